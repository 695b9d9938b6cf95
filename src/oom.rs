//! The one place that decides whether a failed forward pass ran out of device memory (and so is
//! worth halving), and the simulated out-of-memory that tests drive halving with on the CPU.

use std::fmt;
use std::sync::Arc;

/// Whether a tensor-library error means the device ran out of memory.
///
/// Context, path and backtrace layers are unwrapped first and only the innermost error is read:
/// a backtrace can name a function called `..._out_of_memory` without anything having run out.
/// The innermost error is then a simulated one (tests), or the CUDA driver's
/// `CUDA_ERROR_OUT_OF_MEMORY` or cuBLAS's `CUBLAS_STATUS_ALLOC_FAILED` as candle reports them.
/// CPU allocation failures abort the process, so they never get here.
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
    let text = leaf.to_string();
    OOM_CODES.iter().any(|code| text.contains(code))
}

/// The codes CUDA and cuBLAS report out-of-memory with.
const OOM_CODES: [&str; 2] = ["CUDA_ERROR_OUT_OF_MEMORY", "CUBLAS_STATUS_ALLOC_FAILED"];

/// What cuBLAS reports when a kernel it loads lazily (first needed for a new matrix shape, such
/// as a halved batch's) cannot be loaded for want of memory.
const LAZY_LOAD_CODES: [&str; 2] = [
    "CUBLAS_STATUS_EXECUTION_FAILED",
    "CUBLAS_STATUS_INTERNAL_ERROR",
];

/// Below this share of free device memory, a lazy-load failure counts as out-of-memory.
const SCARCE: f64 = 0.05;

/// An error from a device with `free_fraction` of its memory free, as the halving should see
/// it: a lazy kernel-load failure while memory is scarce becomes an out-of-memory (so the batch
/// is halved rather than the run stopped); with memory to spare it stays what it is, a fault.
pub(crate) fn under_pressure(
    error: candle_core::Error,
    free_fraction: Option<f64>,
) -> candle_core::Error {
    let text = innermost(&error).to_string();
    let lazy_load = LAZY_LOAD_CODES.iter().any(|code| text.contains(code));
    if lazy_load && free_fraction.is_some_and(|free| free < SCARCE) {
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
    fn recognises_cuda_and_cublas_out_of_memory_under_any_wrapping() {
        let driver = "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")";
        assert!(is_oom(&msg(driver)));
        assert!(is_oom(&msg(driver).context("while running layer 3")));
        assert!(is_oom(&msg(driver).bt()));
        assert!(is_oom(&msg("CublasError(CUBLAS_STATUS_ALLOC_FAILED)")));
        assert!(!is_oom(&msg("shape mismatch in matmul")));
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
    fn a_lazy_load_failure_counts_only_when_memory_is_scarce() {
        let failure = || msg("CublasError(CUBLAS_STATUS_EXECUTION_FAILED)").bt();
        let scarce = under_pressure(failure(), Some(0.01));
        assert!(is_oom(&scarce), "{scarce}");
        assert!(
            scarce
                .to_string()
                .contains("CUBLAS_STATUS_EXECUTION_FAILED"),
            "{scarce}"
        );
        assert!(!is_oom(&under_pressure(failure(), Some(0.5))));
        assert!(
            !is_oom(&under_pressure(failure(), None)),
            "the CPU has no such failure"
        );
        let other = under_pressure(msg("shape mismatch"), Some(0.0));
        assert!(!is_oom(&other));
    }

    #[test]
    fn a_simulated_failure_counts_and_names_its_batch() {
        let rule = SimulatedOom::new(Arc::new(|rows: &[usize], _| rows.len() > 2));
        assert!(rule.check(&[0, 1], 10).is_ok());
        let err = rule.check(&[0, 1, 2], 30).unwrap_err();
        assert!(is_oom(&err));
        assert!(err.to_string().contains("30 padded tokens"), "{err}");
    }

    #[test]
    fn an_estimated_failure_counts_and_says_how_much() {
        let err = estimated_oom(3 << 30, 1 << 30);
        assert!(is_oom(&err));
        assert!(err.to_string().contains("3072 MiB"), "{err}");
    }
}
