//! Keeps freed memory in the process on the CPU path. Every candle op allocates its output
//! afresh; glibc's default hands blocks past its (adaptive, 32 MiB at most) mmap threshold back
//! to the kernel on free and trims the heap top, so the next batch faults the same pages in
//! again, zeroed. On a 2-core machine that was about a fifth of all-MiniLM's CPU time (page
//! faults and `clear_page` in the profile). Raising both thresholds makes later batches reuse
//! the memory of earlier ones, as ONNX Runtime's arena does; the cost is that the process keeps
//! its peak heap after a call. (Threads other than the main one allocate from 64 MiB heaps, so
//! there a block past that size is still mapped and returned: rare at the CPU batch budget.)

use std::sync::Once;

/// Blocks at least this large are still mapped and returned one by one: only outputs far past
/// any batch's tensors.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: usize = 1 << 30;
/// Free heap top kept before it is returned to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: usize = 1 << 30;

/// Environment variables through which a user sets glibc's malloc policy; when any is set, that
/// choice stands.
const USER_SETTINGS: [&str; 3] = [
    "GLIBC_TUNABLES",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
];

/// Sets the process's malloc thresholds once (glibc only; elsewhere nothing to do), unless the
/// environment already sets a malloc policy.
pub(crate) fn retain_freed_memory() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Some(name) = USER_SETTINGS
            .iter()
            .find(|name| std::env::var_os(name).is_some())
        {
            tracing::debug!(%name, "malloc policy set in the environment; left as it is");
            return;
        }
        set_thresholds();
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() {
    let as_int = |bytes: usize| libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only changes two allocator parameters; it is safe to call at any time.
    let set = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, as_int(MMAP_THRESHOLD)) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, as_int(TRIM_THRESHOLD)) == 1
    };
    tracing::debug!(set, "kept freed CPU memory in the process heap");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() {}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn a_freed_batch_sized_block_stays_in_the_heap() {
        if USER_SETTINGS
            .iter()
            .any(|name| std::env::var_os(name).is_some())
        {
            return; // the user's malloc policy stands, so there is nothing of ours to check
        }
        retain_freed_memory();
        let bytes = 16 << 20; // one 2,048-token batch of a 2,048-wide layer
        let block = std::hint::black_box(vec![1u8; bytes]);
        drop(block);
        let free = crate::host_memory::free_heap_bytes() as usize;
        assert!(
            free >= bytes,
            "{free} bytes free in the heap after freeing {bytes}: the block went back to the kernel"
        );
    }
}
