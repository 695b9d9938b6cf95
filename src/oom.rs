//! The one place that decides whether a failed forward pass ran out of device memory (and so is
//! worth halving), and the simulated out-of-memory that tests drive halving with on the CPU.

use std::fmt;
use std::sync::Arc;

use crate::cuda_errors::{self, CudaFault};

/// Whether a tensor-library error means the device ran out of memory.
///
/// Context, path and backtrace layers are unwrapped first and only the innermost error is read,
/// by its type: a simulated or estimated out-of-memory, a lazy kernel load that failed while
/// memory was scarce (see [`under_pressure`]), or a CUDA out-of-memory as
/// [`cuda_errors::classify`] recognizes it. Text is never matched: a backtrace can name a
/// function called `..._out_of_memory`, or a context quote a code, without anything having run
/// out. CPU allocation failures abort the process, so they never get here.
pub(crate) fn is_oom(error: &candle_core::Error) -> bool {
    let leaf = innermost(error);
    if let candle_core::Error::WrappedContext { wrapped, .. } = leaf {
        if wrapped.downcast_ref::<Simulated>().is_some()
            || wrapped.downcast_ref::<Scarce>().is_some()
            || wrapped.downcast_ref::<Estimated>().is_some()
        {
            return true;
        }
    }
    cuda_errors::classify(leaf) == Some(CudaFault::OutOfMemory)
}

/// Below this share of free device memory, a lazy-load failure counts as out-of-memory.
const SCARCE: f64 = 0.05;

/// An error from a device with `free_fraction` of its memory free, as the halving should see
/// it: a lazy kernel-load failure while memory is scarce becomes an out-of-memory (so the batch
/// is halved rather than the run stopped); with memory to spare it stays what it is, a fault.
pub(crate) fn under_pressure(
    error: candle_core::Error,
    free_fraction: Option<f64>,
) -> candle_core::Error {
    let lazy_load = is_kernel_load(innermost(&error));
    if lazy_load && free_fraction.is_some_and(|free| free < SCARCE) {
        let text = innermost(&error).to_string();
        return candle_core::Error::WrappedContext {
            wrapped: Box::new(Scarce(text)),
            context: format!(
                "with {:.1}% of device memory free",
                100.0 * free_fraction.unwrap_or(0.0)
            ),
        };
    }
    error
}

fn is_kernel_load(leaf: &candle_core::Error) -> bool {
    cuda_errors::classify(leaf) == Some(CudaFault::KernelLoad)
}

fn innermost(mut error: &candle_core::Error) -> &candle_core::Error {
    loop {
        error = match error {
            candle_core::Error::Context { inner, .. }
            | candle_core::Error::WithPath { inner, .. }
            | candle_core::Error::WithBacktrace { inner, .. } => inner,
            leaf => return leaf,
        }
    }
}

/// The error of a forward pass refused before it ran because it would need more memory than
/// the CPU has available (`needed` and `available` in bytes): on the CPU an allocation failure
/// aborts the process, so a pass that cannot fit is never started. Counts as out-of-memory.
pub(crate) fn estimated_oom(needed: u64, available: u64) -> candle_core::Error {
    candle_core::Error::WrappedContext {
        wrapped: Box::new(Estimated),
        context: format!(
            "needs about {} MiB, {} MiB available",
            needed >> 20,
            available >> 20
        ),
    }
}

/// The error an estimated out-of-memory carries.
#[derive(Debug)]
struct Estimated;

impl fmt::Display for Estimated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("out of memory (estimated before running)")
    }
}

impl std::error::Error for Estimated {}

/// Decides which forward passes fail as if the device were out of memory: given a batch's input
/// indices (positions in the caller's slice) and its padded token count, true fails it.
pub(crate) type OomRule = dyn Fn(&[usize], usize) -> bool + Send + Sync;

/// A rule that makes chosen batches fail as out-of-memory before they reach the network, so
/// that halving can be tested through the real embedder on a CPU.
#[derive(Clone)]
pub struct SimulatedOom(Arc<OomRule>);

impl SimulatedOom {
    pub(crate) fn new(rule: Arc<OomRule>) -> Self {
        Self(rule)
    }

    /// Fails the batch if the rule says so.
    pub(crate) fn check(&self, rows: &[usize], padded_tokens: usize) -> candle_core::Result<()> {
        if (self.0)(rows, padded_tokens) {
            return Err(candle_core::Error::WrappedContext {
                wrapped: Box::new(Simulated),
                context: format!("{} inputs, {padded_tokens} padded tokens", rows.len()),
            });
        }
        Ok(())
    }
}

impl fmt::Debug for SimulatedOom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SimulatedOom")
    }
}

/// An out-of-memory error as a simulated failure raises it, for unit tests of what handles one.
#[cfg(test)]
pub(crate) fn simulated_for_test() -> candle_core::Error {
    candle_core::Error::WrappedContext {
        wrapped: Box::new(Simulated),
        context: "unit test".into(),
    }
}

/// The error a simulated out-of-memory carries.
#[derive(Debug)]
struct Simulated;

impl fmt::Display for Simulated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("simulated out of memory")
    }
}

impl std::error::Error for Simulated {}

/// A lazy kernel-load failure while device memory was scarce, with the library's message.
#[derive(Debug)]
struct Scarce(String);

impl fmt::Display for Scarce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "out of memory while loading a kernel: {}", self.0)
    }
}

impl std::error::Error for Scarce {}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> candle_core::Error {
        candle_core::Error::Msg(text.into())
    }

    #[test]
    fn text_that_quotes_an_out_of_memory_code_does_not_count() {
        let driver = "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")";
        assert!(!is_oom(&msg(driver)));
        assert!(!is_oom(&msg("shape mismatch").context(driver)));
        assert!(!is_oom(
            &msg("CublasError(CUBLAS_STATUS_ALLOC_FAILED)").bt()
        ));
    }

    #[test]
    fn a_backtrace_that_names_out_of_memory_does_not_count() {
        let inner = Box::new(msg("shape mismatch in matmul"));
        let backtrace = std::backtrace::Backtrace::force_capture();
        let error = candle_core::Error::WithBacktrace {
            inner,
            backtrace: Box::new(backtrace),
        };
        // What a test binary's frames look like: a function named after out-of-memory.
        let error =
            error.context("in tests::single_input_out_of_memory CUDA_ERROR_OUT_OF_MEMORY frame");
        assert!(!is_oom(&error), "{error}");
    }

    #[test]
    fn a_simulated_failure_counts_under_any_wrapping_and_names_its_batch() {
        let rule = SimulatedOom::new(Arc::new(|rows: &[usize], _| rows.len() > 2));
        assert!(rule.check(&[0, 1], 10).is_ok());
        let err = rule.check(&[0, 1, 2], 30).unwrap_err();
        assert!(err.to_string().contains("30 padded tokens"), "{err}");
        let wrapped = err.bt().context("while running layer 3");
        assert!(is_oom(&wrapped), "{wrapped}");
    }

    #[test]
    fn an_estimated_failure_counts_and_says_how_much() {
        let err = estimated_oom(3 << 30, 1 << 30);
        assert!(is_oom(&err));
        assert!(err.to_string().contains("3072 MiB"), "{err}");
    }

    #[test]
    fn without_cuda_errors_pressure_changes_nothing() {
        let other = under_pressure(msg("CUBLAS_STATUS_EXECUTION_FAILED"), Some(0.0));
        assert!(!is_oom(&other), "{other}");
    }

    /// Real CUDA error values, built as candle builds them; run by the CUDA build's CI step,
    /// which needs no GPU.
    #[cfg(feature = "cuda")]
    mod cuda {
        use candle_core::cuda_backend::cudarc::cublas::result::CublasError;
        use candle_core::cuda_backend::cudarc::cublas::sys::cublasStatus_t;
        use candle_core::cuda_backend::cudarc::driver::sys::CUresult;
        use candle_core::cuda_backend::cudarc::driver::DriverError;
        use candle_core::cuda_backend::CudaError;

        use crate::oom::{is_oom, under_pressure};

        fn driver(code: CUresult) -> candle_core::Error {
            candle_core::Error::from(CudaError::Cuda(DriverError(code)))
        }

        fn cublas(status: cublasStatus_t) -> candle_core::Error {
            candle_core::Error::from(CudaError::Cublas(CublasError(status)))
        }

        #[test]
        fn cuda_and_cublas_out_of_memory_count_under_any_wrapping() {
            let oom = || driver(CUresult::CUDA_ERROR_OUT_OF_MEMORY);
            assert!(is_oom(&oom()));
            assert!(is_oom(&oom().bt().context("while running layer 3")));
            assert!(is_oom(&oom().with_path("model.safetensors")));
            assert!(is_oom(&cublas(cublasStatus_t::CUBLAS_STATUS_ALLOC_FAILED)));
            assert!(!is_oom(&driver(CUresult::CUDA_ERROR_ILLEGAL_ADDRESS)));
        }

        #[test]
        fn a_real_fault_under_a_backtrace_naming_out_of_memory_does_not_count() {
            let error = candle_core::Error::WithBacktrace {
                inner: Box::new(driver(CUresult::CUDA_ERROR_ILLEGAL_ADDRESS)),
                backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
            }
            .context("tests::single_input_out_of_memory CUDA_ERROR_OUT_OF_MEMORY");
            assert!(!is_oom(&error), "{error}");
        }

        #[test]
        fn a_lazy_load_failure_counts_only_when_memory_is_scarce() {
            let failure = || cublas(cublasStatus_t::CUBLAS_STATUS_EXECUTION_FAILED).bt();
            let scarce = under_pressure(failure(), Some(0.01));
            assert!(is_oom(&scarce), "{scarce}");
            assert!(
                scarce
                    .to_string()
                    .contains("CUBLAS_STATUS_EXECUTION_FAILED"),
                "{scarce}"
            );
            assert!(!is_oom(&under_pressure(failure(), Some(0.5))));
            assert!(!is_oom(&under_pressure(failure(), None)));
            let fault = under_pressure(driver(CUresult::CUDA_ERROR_ILLEGAL_ADDRESS), Some(0.0));
            assert!(!is_oom(&fault));
        }
    }
}
