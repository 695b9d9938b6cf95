//! Building blocks shared by the model files; a faster device-specific kernel, when there is one,
//! is chosen here and nowhere else.

pub(crate) mod activation;
pub(crate) mod attention;
pub(crate) mod cpu_attention;
pub(crate) mod cpu_buffer;
pub(crate) mod cpu_linear;
pub(crate) mod cpu_rotary;
pub(crate) mod linear;
pub(crate) mod norm;
pub(crate) mod rotary;
#[cfg(test)]
pub(crate) mod test_support;
pub(crate) mod vector_math;
