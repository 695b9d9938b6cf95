//! Turning the user's [`Device`] and [`Precision`] choice into candle's, and every default that
//! depends on the device.

use candle_core::DType;

use crate::cuda_driver;
use crate::error::{Error, Result};
use crate::options::{Device, Precision};

/// The candle device for a choice; `Auto` falls back to the CPU when no CUDA device is usable
/// (logged, with the reason, when the build has CUDA).
pub(crate) fn resolve_device(choice: Device) -> Result<candle_core::Device> {
    match choice {
        Device::Cpu => Ok(candle_core::Device::Cpu),
        Device::Auto => {
            if cfg!(feature = "cuda") {
                match cuda_driver::open(0) {
                    Ok(device) => return Ok(device),
                    Err(reason) => tracing::info!(%reason, "no CUDA device; using the CPU"),
                }
            }
            Ok(candle_core::Device::Cpu)
        }
        Device::Cuda(ordinal) => {
            cuda_driver::open(ordinal).map_err(|reason| Error::DeviceUnavailable {
                device: format!("cuda:{ordinal}"),
                reason,
            })
        }
    }
}

/// Called after a forward pass ran out of memory, before the retry: the failed pass's tensors
/// are already dropped, and waiting for the device lets CUDA's stream-ordered frees complete
/// and hand the memory back, so the halves start from an empty pool. A device that fails even
/// this is left for the retry to report.
pub(crate) fn release_after_oom(device: &candle_core::Device) {
    if let Err(error) = device.synchronize() {
        tracing::warn!(%error, "synchronizing the device after out-of-memory failed");
    }
}

/// Padded tokens per forward pass when the caller names none: 16,384 on CUDA, where larger
/// batches keep the GPU busy, and 2,048 on the CPU, where activations that stay in cache beat
/// larger batches (all-MiniLM-L6-v2 on 2 cores: about twice the throughput of 16,384).
pub(crate) fn default_max_batch_tokens(device: &candle_core::Device) -> usize {
    if device.is_cuda() {
        16_384
    } else {
        2_048
    }
}

/// Most attention scores one block may hold (see `layers::attention`): 2^22 on the CPU (16 MiB
/// in f32; blocks that size run as fast as whole matrices and keep a 32,768-token input's
/// attention in tens of MiB) and 2^28 on CUDA (1 GiB in f32, large matmuls for the GPU, and far
/// below the 2^31 elements past which candle's 32-bit-indexed kernels go out of bounds).
pub(crate) fn attention_block_elements(device: &candle_core::Device) -> usize {
    if device.is_cuda() {
        1 << 28
    } else {
        1 << 22
    }
}

/// Memory a forward pass on this device may use, in bytes, when it must be checked before the
/// pass runs: on the CPU, what the system has available now (an allocation failure there aborts
/// the process); `None` on CUDA, which reports out-of-memory as an error that halving handles,
/// and where the system's figure is unknown.
pub(crate) fn memory_to_check(device: &candle_core::Device) -> Option<u64> {
    if device.is_cpu() {
        crate::host_memory::available_bytes()
    } else {
        None
    }
}

/// The user's name for a device a model was loaded on.
pub(crate) fn describe(device: &candle_core::Device) -> Device {
    match device.location() {
        candle_core::DeviceLocation::Cuda { gpu_id } => Device::Cuda(gpu_id),
        _ => Device::Cpu,
    }
}

/// The user's name for a compute dtype.
pub(crate) fn precision_of(dtype: DType) -> Precision {
    match dtype {
        DType::F16 => Precision::F16,
        DType::BF16 => Precision::BF16,
        _ => Precision::F32,
    }
}

/// The compute dtype: `Auto` is bf16 on CUDA and f32 on the CPU.
pub(crate) fn resolve_dtype(precision: Precision, device: &candle_core::Device) -> DType {
    match precision {
        Precision::F32 => DType::F32,
        Precision::F16 => DType::F16,
        Precision::BF16 => DType::BF16,
        Precision::Auto if device.is_cuda() => DType::BF16,
        Precision::Auto => DType::F32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_defaults() {
        let cpu = resolve_device(Device::Cpu).unwrap();
        assert_eq!(resolve_dtype(Precision::Auto, &cpu), DType::F32);
        assert_eq!(resolve_dtype(Precision::BF16, &cpu), DType::BF16);
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_feature_is_a_clear_error() {
        let err = resolve_device(Device::Cuda(1)).unwrap_err();
        assert!(
            err.to_string().contains("cuda:1") && err.to_string().contains("feature"),
            "{err}"
        );
        assert!(resolve_device(Device::Auto).unwrap().is_cpu());
    }
}
