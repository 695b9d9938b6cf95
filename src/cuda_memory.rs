//! Memory figures of one CUDA device, read from the driver and the device's default memory
//! pool (candle allocates every tensor from it, so its high-water mark is the exact peak of
//! tensor memory). Without the `cuda` feature, or on the CPU, every function answers `None`.

/// Memory figures of one device, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryUsage {
    /// Free device memory now, as the driver reports it (all processes).
    pub free: u64,
    /// Total device memory.
    pub total: u64,
    /// Highest tensor memory in use since the last
    /// [`gpu_memory::reset_peak`](crate::gpu_memory::reset_peak) (or since start).
    pub peak: u64,
}

/// The device's memory now and the pool's peak.
pub(crate) fn usage(device: &candle_core::Device) -> Option<MemoryUsage> {
    imp::usage(device)
}

/// The device's product name.
pub(crate) fn device_name(device: &candle_core::Device) -> Option<String> {
    imp::device_name(device)
}

/// Starts a new peak measurement from the memory in use now.
pub(crate) fn reset_peak(device: &candle_core::Device) {
    imp::reset_peak(device)
}

/// The share of the device's memory that is free now.
pub(crate) fn free_fraction(device: &candle_core::Device) -> Option<f64> {
    let usage = usage(device)?;
    (usage.total > 0).then(|| usage.free as f64 / usage.total as f64)
}

#[cfg(feature = "cuda")]
mod imp {
    use crate::cuda_memory::MemoryUsage;
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
    use crate::cuda_memory::MemoryUsage;

    pub(super) fn usage(_: &candle_core::Device) -> Option<MemoryUsage> {
        None
    }

    pub(super) fn device_name(_: &candle_core::Device) -> Option<String> {
        None
    }

    pub(super) fn reset_peak(_: &candle_core::Device) {}
}
