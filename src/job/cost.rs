//! What the job costs at a price per hour of machine time: so far, and projected to the end.
//!
//! Time is the wall-clock time of every run on the output (a killed run counts up to its last
//! checkpoint), since the machine is paid for while it loads the model and skips finished
//! records as much as while it embeds.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Cost so far and projected total.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CostEstimate {
    /// The price per hour given, in USD.
    pub price_per_hour: f64,
    /// Hours of all runs so far.
    pub hours: f64,
    /// `hours * price_per_hour`.
    pub so_far_usd: f64,
    /// Cost so far plus the remaining time at the current rate; `None` while the rate or the
    /// input size is unknown.
    pub projected_total_usd: Option<f64>,
}

impl CostEstimate {
    /// The cost after `seconds` of work with `remaining_seconds` still to go, if known.
    pub fn new(price_per_hour: f64, seconds: f64, remaining_seconds: Option<f64>) -> Self {
        let hours = seconds / 3600.0;
        let so_far_usd = hours * price_per_hour;
        Self {
            price_per_hour,
            hours,
            so_far_usd,
            projected_total_usd: remaining_seconds
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| so_far_usd + s / 3600.0 * price_per_hour),
        }
    }
}

impl fmt::Display for CostEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${:.2}", self.so_far_usd)?;
        if let Some(total) = self.projected_total_usd {
            write!(f, " (projected ${total:.2})")?;
        }
        Ok(())
    }
}

/// Seconds left at the rate seen so far: `done` of `total` units in `seconds`.
pub(crate) fn remaining_seconds(done: u64, total: Option<u64>, seconds: f64) -> Option<f64> {
    let total = total?;
    if done == 0 || seconds <= 0.0 {
        return None;
    }
    Some(total.saturating_sub(done) as f64 * seconds / done as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_remaining_time_at_the_current_rate() {
        // A quarter done in 30 minutes: 90 minutes to go; at $4/h, $2 so far, $8 in all.
        let remaining = remaining_seconds(250, Some(1000), 1800.0);
        assert_eq!(remaining, Some(5400.0));
        let cost = CostEstimate::new(4.0, 1800.0, remaining);
        assert_eq!(cost.so_far_usd, 2.0);
        assert_eq!(cost.projected_total_usd, Some(8.0));
        assert_eq!(cost.to_string(), "$2.00 (projected $8.00)");
        assert_eq!(remaining_seconds(0, Some(10), 5.0), None);
        assert_eq!(
            CostEstimate::new(4.0, 1800.0, None).projected_total_usd,
            None
        );
    }
}
