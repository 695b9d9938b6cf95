//! How much memory a CUDA device has, and the peak a run used, for benchmarks and job logs.
//!
//! candle allocates through CUDA's stream-ordered allocator, so every tensor lives in the
//! device's default memory pool; the pool's own high-water mark is the exact peak of tensor
//! memory, with none of the sampling error of polling `nvidia-smi`. Without the `cuda` feature,
//! or on the CPU, every function returns `None`.

use crate::cuda_memory;
pub use crate::cuda_memory::MemoryUsage;
use crate::embedder::Embedder;

/// Each of the embedder's devices' memory now and its pool's peak, in [`Embedder::devices`]
/// order; `None` for the CPU or without `cuda`.
pub fn usage(embedder: &Embedder) -> Vec<Option<MemoryUsage>> {
    embedder.candle_devices().map(cuda_memory::usage).collect()
}

/// Each of the embedder's devices' product name (`NVIDIA H100 80GB HBM3`); `None` for the CPU
/// or without `cuda`.
pub fn device_names(embedder: &Embedder) -> Vec<Option<String>> {
    embedder
        .candle_devices()
        .map(cuda_memory::device_name)
        .collect()
}

/// Starts a new peak measurement on every device of the embedder from the memory in use now.
pub fn reset_peak(embedder: &Embedder) {
    embedder.candle_devices().for_each(cuda_memory::reset_peak)
}
