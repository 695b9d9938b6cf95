//! Opening a CUDA device without ever aborting: a build with the `cuda` feature must also run
//! on a machine without the NVIDIA driver, where `--device auto` falls back to the CPU and
//! `--device cuda` says what is missing.
//!
//! cudarc, when built to load CUDA at run time (`scripts/cuda/build.sh`), panics on the first
//! call into a library it cannot find; so the driver is looked for first, and any other library
//! that cannot be loaded (cuBLAS, cuRAND, NVRTC) is caught and reported as the reason.

/// A CUDA device, or why there is none.
pub(crate) fn open(ordinal: usize) -> Result<candle_core::Device, String> {
    imp::open(ordinal)
}

#[cfg(feature = "cuda")]
mod imp {
    use std::ffi::CStr;

    /// The driver library's name as the NVIDIA driver installs it.
    const DRIVER: &CStr = c"libcuda.so.1";

    pub(super) fn open(ordinal: usize) -> Result<candle_core::Device, String> {
        driver_present()?;
        match std::panic::catch_unwind(|| candle_core::Device::new_cuda(ordinal)) {
            Ok(Ok(device)) => Ok(device),
            Ok(Err(error)) => Err(error.to_string()),
            Err(panic) => Err(format!(
                "a CUDA library could not be loaded: {}",
                panic_text(panic.as_ref())
            )),
        }
    }

    fn driver_present() -> Result<(), String> {
        // SAFETY: a NUL-terminated name; the handle is closed again at once and nothing from the
        // library is used here (cudarc opens it again itself).
        let handle = unsafe { libc::dlopen(DRIVER.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!(
                "the NVIDIA driver ({}) was not found; install the driver, or use the CPU",
                DRIVER.to_string_lossy()
            ));
        }
        // SAFETY: `handle` came from dlopen above and is closed once.
        unsafe { libc::dlclose(handle) };
        Ok(())
    }

    fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
        if let Some(text) = panic.downcast_ref::<String>() {
            text.clone()
        } else if let Some(text) = panic.downcast_ref::<&str>() {
            (*text).to_string()
        } else {
            "(no message)".to_string()
        }
    }
}

#[cfg(not(feature = "cuda"))]
mod imp {
    pub(super) fn open(_: usize) -> Result<candle_core::Device, String> {
        Err("rembed was built without the `cuda` feature".into())
    }
}
