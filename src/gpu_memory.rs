//! How much memory a CUDA device has, and the peak a run used, for benchmarks and job logs.
//!
//! candle allocates through CUDA's stream-ordered allocator, so every tensor lives in the
//! device's default memory pool; the pool's own high-water mark is the exact peak of tensor
//! memory, with none of the sampling error of polling `nvidia-smi`. Without the `cuda` feature,
//! or on the CPU, every function returns `None`.

use crate::embedder::Embedder;

/// Memory figures of one device, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryUsage {
    /// Free device memory now, as the driver reports it (all processes).
    pub free: u64,
    /// Total device memory.
    pub total: u64,
    /// Highest tensor memory in use since the last [`reset_peak`] (or since start).
    pub peak: u64,
}

/// Each of the embedder's devices' memory now and its pool's peak, in [`Embedder::devices`]
/// order; `None` for the CPU or without `cuda`.
pub fn usage(embedder: &Embedder) -> Vec<Option<MemoryUsage>> {
    embedder.candle_devices().map(imp::usage).collect()
}

/// Each of the embedder's devices' product name (`NVIDIA H100 80GB HBM3`); `None` for the CPU
/// or without `cuda`.
pub fn device_names(embedder: &Embedder) -> Vec<Option<String>> {
    embedder.candle_devices().map(imp::device_name).collect()
}

/// Starts a new peak measurement on every device of the embedder from the memory in use now.
pub fn reset_peak(embedder: &Embedder) {
    embedder.candle_devices().for_each(imp::reset_peak)
}

#[cfg(feature = "cuda")]
mod imp {
    use super::MemoryUsage;
    use candle_core::cuda_backend::cudarc::driver::sys;

    fn default_pool(device: &candle_core::Device) -> Option<sys::CUmemoryPool> {
        let cuda = device.as_cuda_device().ok()?;
        let context = cuda.cuda_stream().context().clone();
        context.bind_to_thread().ok()?;
        let mut pool = std::ptr::null_mut();
        // SAFETY: the context is bound to this thread and `pool` is a valid out-pointer.
        let status = unsafe { sys::cuDeviceGetDefaultMemPool(&mut pool, context.cu_device()) };
        (status == sys::CUresult::CUDA_SUCCESS).then_some(pool)
    }

    pub(super) fn usage(device: &candle_core::Device) -> Option<MemoryUsage> {
        let cuda = device.as_cuda_device().ok()?;
        let (free, total) = cuda.cuda_stream().context().mem_get_info().ok()?;
        let pool = default_pool(device)?;
        let mut peak: u64 = 0;
        // SAFETY: `pool` came from the driver; USED_MEM_HIGH is a u64 attribute.
        let status = unsafe {
            sys::cuMemPoolGetAttribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
                (&mut peak as *mut u64).cast(),
            )
        };
        (status == sys::CUresult::CUDA_SUCCESS).then_some(MemoryUsage {
            free: free as u64,
            total: total as u64,
            peak,
        })
    }

    pub(super) fn device_name(device: &candle_core::Device) -> Option<String> {
        let cuda = device.as_cuda_device().ok()?;
        cuda.cuda_stream().context().name().ok()
    }

    pub(super) fn reset_peak(device: &candle_core::Device) {
        if let Some(pool) = default_pool(device) {
            // Only zero is accepted: it resets the mark to the memory in use now.
            let mut zero: u64 = 0;
            // SAFETY: as above; the driver reads a u64.
            unsafe {
                sys::cuMemPoolSetAttribute(
                    pool,
                    sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
                    (&mut zero as *mut u64).cast(),
                );
            }
        }
    }
}

#[cfg(not(feature = "cuda"))]
mod imp {
    use super::MemoryUsage;

    pub(super) fn usage(_: &candle_core::Device) -> Option<MemoryUsage> {
        None
    }

    pub(super) fn device_name(_: &candle_core::Device) -> Option<String> {
        None
    }

    pub(super) fn reset_peak(_: &candle_core::Device) {}
}
