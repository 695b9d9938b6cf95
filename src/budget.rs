//! What a device has taught about its memory: the smallest batch (in padded tokens) that ran out
//! of it. Later batches that large are split before they run, so one out-of-memory does not
//! make every later full-size batch fail part-way and halve again.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The learned limit of one device; shared by the threads that run batches on it.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    /// Smallest padded size that ran out of memory; `usize::MAX` until one did.
    failed_at: AtomicUsize,
}

impl Default for MemoryBudget {
    fn default() -> Self {
        Self {
            failed_at: AtomicUsize::new(usize::MAX),
        }
    }
}

impl MemoryBudget {
    /// Whether a batch of `padded` tokens may run, rather than be split first: it is smaller
    /// than anything that ran out of memory. Sizes in between are still tried, so a budget
    /// that fits is found again without ever repeating a failure; sizes that fail lower the
    /// limit further. (Memory that frees up later is not reclaimed: the limit only ever falls,
    /// which costs some throughput and never a failure.)
    pub(crate) fn allows(&self, padded: usize) -> bool {
        padded < self.failed_at.load(Ordering::Relaxed)
    }

    /// Records that a batch of `padded` tokens ran out of memory.
    pub(crate) fn failed(&self, padded: usize) {
        let before = self.failed_at.fetch_min(padded, Ordering::Relaxed);
        if padded < before {
            tracing::info!(
                padded_tokens = padded,
                "device out of memory; later batches of this size or more are split before they run"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_never_repeated_and_only_lowers_the_limit() {
        let budget = MemoryBudget::default();
        assert!(budget.allows(1 << 40));
        budget.failed(4096);
        assert!(!budget.allows(4096) && !budget.allows(5000) && budget.allows(4095));
        budget.failed(8192);
        assert!(
            !budget.allows(4096),
            "a larger failure does not raise the limit"
        );
        budget.failed(1024);
        assert!(!budget.allows(2048) && budget.allows(1023));
    }
}
