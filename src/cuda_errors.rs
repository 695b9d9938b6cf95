//! What a CUDA failure was, read from the error types candle and cudarc report it with (never
//! from message text, which a backtrace or a context string can fake).
//!
//! candle 0.11 reports a failed driver call as `Error::Cuda(CudaError::Cuda(DriverError))`, a
//! failed cuBLAS call as `CudaError::Cublas(CublasError)`, and a kernel module that could not be
//! loaded as `CudaError::Load { cuda: DriverError, .. }`. Only `Device::synchronize` wraps its
//! failure as text (`Error::Wrapped`), which no halving decision depends on.

/// A CUDA failure that the batch runner treats differently from a plain fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CudaFault {
    /// The driver's `CUDA_ERROR_OUT_OF_MEMORY` or cuBLAS's `CUBLAS_STATUS_ALLOC_FAILED`.
    OutOfMemory,
    /// A kernel loaded on first use failed: a candle module that could not be loaded, or cuBLAS's
    /// `CUBLAS_STATUS_EXECUTION_FAILED`/`CUBLAS_STATUS_INTERNAL_ERROR`, which is what cuBLAS says
    /// when it cannot load a kernel for a new matrix shape. Out-of-memory only when memory is
    /// scarce (see `oom::under_pressure`).
    KernelLoad,
}

/// The fault an innermost (unwrapped) candle error stands for, if it is one of the above.
pub(crate) fn classify(leaf: &candle_core::Error) -> Option<CudaFault> {
    imp::classify(leaf)
}

#[cfg(feature = "cuda")]
mod imp {
    use candle_core::cuda_backend::cudarc::cublas::result::CublasError;
    use candle_core::cuda_backend::cudarc::cublas::sys::cublasStatus_t;
    use candle_core::cuda_backend::cudarc::cublaslt::result::CublasError as CublasLtError;
    use candle_core::cuda_backend::cudarc::cublaslt::sys::cublasStatus_t as LtStatus;
    use candle_core::cuda_backend::cudarc::driver::sys::CUresult;
    use candle_core::cuda_backend::cudarc::driver::DriverError;
    use candle_core::cuda_backend::CudaError;

    use crate::cuda_errors::CudaFault;

    pub(super) fn classify(leaf: &candle_core::Error) -> Option<CudaFault> {
        let source: &(dyn std::error::Error + 'static) = match leaf {
            candle_core::Error::Cuda(inner) => inner.as_ref(),
            candle_core::Error::WrappedContext { wrapped, .. } => wrapped.as_ref(),
            _ => return None,
        };
        if let Some(error) = source.downcast_ref::<CudaError>() {
            return match error {
                CudaError::Cuda(driver) => from_driver(driver),
                CudaError::Cublas(CublasError(status)) => from_cublas(*status),
                CudaError::Load { cuda, .. } => {
                    Some(from_driver(cuda).unwrap_or(CudaFault::KernelLoad))
                }
                _ => None,
            };
        }
        if let Some(driver) = source.downcast_ref::<DriverError>() {
            return from_driver(driver);
        }
        if let Some(CublasError(status)) = source.downcast_ref::<CublasError>() {
            return from_cublas(*status);
        }
        if let Some(CublasLtError(status)) = source.downcast_ref::<CublasLtError>() {
            return from_cublas_lt(*status);
        }
        None
    }

    fn from_driver(DriverError(code): &DriverError) -> Option<CudaFault> {
        (*code == CUresult::CUDA_ERROR_OUT_OF_MEMORY).then_some(CudaFault::OutOfMemory)
    }

    fn from_cublas(status: cublasStatus_t) -> Option<CudaFault> {
        match status {
            cublasStatus_t::CUBLAS_STATUS_ALLOC_FAILED => Some(CudaFault::OutOfMemory),
            cublasStatus_t::CUBLAS_STATUS_EXECUTION_FAILED
            | cublasStatus_t::CUBLAS_STATUS_INTERNAL_ERROR => Some(CudaFault::KernelLoad),
            _ => None,
        }
    }

    /// cuBLASLt's statuses are a separate type with the same values.
    fn from_cublas_lt(status: LtStatus) -> Option<CudaFault> {
        match status {
            LtStatus::CUBLAS_STATUS_ALLOC_FAILED => Some(CudaFault::OutOfMemory),
            LtStatus::CUBLAS_STATUS_EXECUTION_FAILED | LtStatus::CUBLAS_STATUS_INTERNAL_ERROR => {
                Some(CudaFault::KernelLoad)
            }
            _ => None,
        }
    }
}

#[cfg(not(feature = "cuda"))]
mod imp {
    use crate::cuda_errors::CudaFault;

    /// A build without CUDA has no CUDA failures.
    pub(super) fn classify(_: &candle_core::Error) -> Option<CudaFault> {
        None
    }
}

/// Run by the CUDA build's CI step (`scripts/cuda/build.sh test`), which needs no GPU: the errors
/// are constructed, exactly as candle builds them.
#[cfg(all(test, feature = "cuda"))]
mod tests {
    use candle_core::cuda_backend::cudarc::cublas::result::CublasError;
    use candle_core::cuda_backend::cudarc::cublas::sys::cublasStatus_t;
    use candle_core::cuda_backend::cudarc::driver::sys::CUresult;
    use candle_core::cuda_backend::cudarc::driver::DriverError;
    use candle_core::cuda_backend::CudaError;

    use crate::cuda_errors::{classify, CudaFault};

    fn driver(code: CUresult) -> candle_core::Error {
        candle_core::Error::from(CudaError::Cuda(DriverError(code)))
    }

    fn cublas(status: cublasStatus_t) -> candle_core::Error {
        candle_core::Error::from(CudaError::Cublas(CublasError(status)))
    }

    fn leaf(error: &candle_core::Error) -> &candle_core::Error {
        match error {
            candle_core::Error::WithBacktrace { inner, .. } => inner,
            other => other,
        }
    }

    #[test]
    fn driver_and_cublas_out_of_memory_are_out_of_memory() {
        let oom = driver(CUresult::CUDA_ERROR_OUT_OF_MEMORY);
        assert_eq!(classify(leaf(&oom)), Some(CudaFault::OutOfMemory));
        let alloc = cublas(cublasStatus_t::CUBLAS_STATUS_ALLOC_FAILED);
        assert_eq!(classify(leaf(&alloc)), Some(CudaFault::OutOfMemory));
    }

    #[test]
    fn lazy_kernel_loads_are_kernel_load_failures() {
        for status in [
            cublasStatus_t::CUBLAS_STATUS_EXECUTION_FAILED,
            cublasStatus_t::CUBLAS_STATUS_INTERNAL_ERROR,
        ] {
            assert_eq!(classify(leaf(&cublas(status))), Some(CudaFault::KernelLoad));
        }
        let load = candle_core::Error::from(CudaError::Load {
            cuda: DriverError(CUresult::CUDA_ERROR_INVALID_IMAGE),
            module_name: "softmax".into(),
        });
        assert_eq!(classify(leaf(&load)), Some(CudaFault::KernelLoad));
        let load_oom = candle_core::Error::from(CudaError::Load {
            cuda: DriverError(CUresult::CUDA_ERROR_OUT_OF_MEMORY),
            module_name: "softmax".into(),
        });
        assert_eq!(classify(leaf(&load_oom)), Some(CudaFault::OutOfMemory));
    }

    #[test]
    fn other_failures_and_text_are_not_classified() {
        let illegal = driver(CUresult::CUDA_ERROR_ILLEGAL_ADDRESS);
        assert_eq!(classify(leaf(&illegal)), None);
        let text = candle_core::Error::Msg("DriverError(CUDA_ERROR_OUT_OF_MEMORY)".into());
        assert_eq!(classify(&text), None);
    }
}
