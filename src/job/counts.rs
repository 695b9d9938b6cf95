//! Reconciliation: where every input record went, in numbers that must add up.
//!
//! Each record read lands in exactly one bucket, and each unique id in exactly one outcome:
//!
//! ```text
//! read   = malformed + other_shards + duplicates + unique
//! unique = empty + embedded + failed + in_flight        (in_flight is 0 once finished)
//! output_rows = embedded + stale
//! ```
//!
//! `duplicates` counts repeated ids within this shard (the first occurrence wins), among them
//! those with another text (`duplicates_other_text`) and those whose id has the text of an
//! earlier id of the other JSON type (`id_conflicts`, `42` after `"42"`); `stale` counts rows
//! already in the output whose ids are no longer in the input (an input that changed between
//! runs). Which records were not embedded, and why, is listed in `_not_embedded*.jsonl`.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::cost::CostEstimate;
use super::id::RecordId;
use super::stop::StopSignal;

/// The reconciliation counts of one shard. Each record read lands in exactly one bucket, and
/// each unique id in exactly one outcome:
///
/// ```text
/// read   = malformed + other_shards + duplicates + unique
/// unique = empty + embedded + failed + in_flight        (in_flight is 0 once finished)
/// output_rows = embedded + stale
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Counts {
    /// Non-blank input lines.
    pub read: u64,
    /// Lines that are not JSON objects, have no usable id, or have a non-string text.
    pub malformed: u64,
    /// Records whose id belongs to another shard.
    pub other_shards: u64,
    /// Records whose id appeared earlier in the input (this shard's part of it).
    pub duplicates: u64,
    /// Of `duplicates`, those whose text differs from the first occurrence's (not embedded).
    #[serde(default)]
    pub duplicates_other_text: u64,
    /// Of `duplicates`, those whose id is the text of an earlier id of the other JSON type.
    #[serde(default)]
    pub id_conflicts: u64,
    /// Distinct ids of this shard.
    pub unique: u64,
    /// Unique ids whose text is missing, null or only whitespace.
    pub empty: u64,
    /// Unique ids with a vector in the output, from this run or earlier ones.
    pub embedded: u64,
    /// Of `embedded`, those found in the output from earlier runs.
    pub resumed: u64,
    /// Unique ids that could not be embedded.
    pub failed: u64,
    /// Of `failed`, those whose vector held a NaN or an infinity (never written).
    #[serde(default)]
    pub non_finite: u64,
    /// Unique ids read but not yet embedded (only in a checkpoint's manifest).
    pub in_flight: u64,
    /// Embedded texts that were cut at the model's max length.
    pub truncated: u64,
    /// Tokens the model saw for the embedded texts.
    pub tokens: u64,
    /// Output rows whose ids are no longer in the input.
    pub stale: u64,
    /// Rows in this shard's part files.
    pub output_rows: u64,
}

impl Counts {
    /// The equations of the module doc that do not hold, in words; empty when all add up.
    pub fn imbalances(&self) -> Vec<String> {
        let mut wrong = Vec::new();
        let buckets = self.malformed + self.other_shards + self.duplicates + self.unique;
        if self.read != buckets {
            wrong.push(format!(
                "read {} != malformed + other shards + duplicates + unique = {buckets}",
                self.read
            ));
        }
        let outcomes = self.empty + self.embedded + self.failed + self.in_flight;
        if self.unique != outcomes {
            wrong.push(format!(
                "unique {} != empty + embedded + failed + in flight = {outcomes}",
                self.unique
            ));
        }
        if self.output_rows != self.embedded + self.stale {
            wrong.push(format!(
                "output rows {} != embedded + stale = {}",
                self.output_rows,
                self.embedded + self.stale
            ));
        }
        wrong
    }
}

/// A record that was not embedded although it has text: malformed or failed in the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailedRecord {
    /// 1-based input line.
    pub line: u64,
    /// Its id with its JSON type, when it has one.
    pub id: Option<RecordId>,
    /// Why it was not embedded.
    pub reason: String,
    /// Whether the line itself was unusable (else the model failed on it).
    pub malformed: bool,
}

/// What a finished job did: the reconciliation, the failures and where the output is.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// The reconciliation counts.
    pub counts: Counts,
    /// Malformed and failed records (at most 10,000 listed).
    pub failures: Vec<FailedRecord>,
    /// Failures not listed.
    pub failures_omitted: u64,
    /// How the input changed since the previous run on this output, if it did.
    pub input_changed: Option<String>,
    /// The manifest written.
    pub manifest: PathBuf,
    /// Seconds this run took.
    pub seconds: f64,
    /// Cost, with a price per hour.
    pub cost: Option<CostEstimate>,
    /// The list of every record without a vector, and why (see [`super::Skipped`]).
    pub not_embedded: Option<PathBuf>,
    /// The signal that stopped the run after its batch in flight, when one did (the output is
    /// then checkpointed but unfinished; running again resumes).
    pub stopped_by: Option<StopSignal>,
}

impl Report {
    /// Whether every record is embedded or accounted for and the counts add up.
    pub fn balanced(&self) -> bool {
        self.counts.imbalances().is_empty()
    }

    /// Whether, on top of [`Report::balanced`], the run finished, something was embedded, and
    /// no record was malformed, failed or had an ambiguous id.
    pub fn all_embedded(&self) -> bool {
        self.balanced()
            && self.stopped_by.is_none()
            && !self.embedded_nothing()
            && self.counts.malformed == 0
            && self.counts.failed == 0
            && self.counts.id_conflicts == 0
    }

    /// Whether the input had records for this shard but none has a vector: every one was
    /// malformed, empty or failed. Almost always a wrong field name or a broken model.
    pub fn embedded_nothing(&self) -> bool {
        let c = &self.counts;
        self.stopped_by.is_none() && c.read > c.other_shards && c.embedded == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let rows: [(&str, u64, &str); 17] = [
            ("records read", c.read, ""),
            ("  malformed", c.malformed, ""),
            ("  other shards", c.other_shards, ""),
            ("  duplicate ids", c.duplicates, ""),
            (
                "    with another text",
                c.duplicates_other_text,
                " (not embedded)",
            ),
            (
                "    id conflicts",
                c.id_conflicts,
                " (42 and \"42\": not embedded)",
            ),
            ("  unique ids", c.unique, ""),
            ("    empty text", c.empty, ""),
            ("    embedded", c.embedded, ""),
            ("      from earlier runs", c.resumed, ""),
            ("    failed", c.failed, ""),
            (
                "      non-finite vectors",
                c.non_finite,
                " (NaN or infinity: not written)",
            ),
            ("    in flight", c.in_flight, ""),
            ("truncated", c.truncated, " (cut at the model's max length)"),
            ("tokens", c.tokens, ""),
            ("output rows", c.output_rows, ""),
            ("  stale", c.stale, " (ids no longer in the input)"),
        ];
        writeln!(f, "reconciliation:")?;
        for (label, value, note) in rows {
            writeln!(f, "  {label:<26}{value:>12}{note}")?;
        }
        for failure in self.failures.iter().take(20) {
            let id = failure.id.as_ref().map_or("-".into(), ToString::to_string);
            writeln!(
                f,
                "  failed line {} id {id}: {}",
                failure.line, failure.reason
            )?;
        }
        let unlisted = self.failures.len().saturating_sub(20) as u64 + self.failures_omitted;
        if unlisted > 0 {
            writeln!(f, "  ... and {unlisted} more failures (see the manifest)")?;
        }
        if let Some(change) = &self.input_changed {
            writeln!(f, "  input changed since the previous run: {change}")?;
        }
        if let Some(cost) = &self.cost {
            writeln!(f, "  cost: {cost}")?;
        }
        if let Some(list) = &self.not_embedded {
            writeln!(f, "  records without a vector, and why: {}", list.display())?;
        }
        if self.embedded_nothing() {
            writeln!(
                f,
                "  NOTHING EMBEDDED from a non-empty input: check the text field and the model"
            )?;
        }
        if let Some(signal) = self.stopped_by {
            writeln!(
                f,
                "  stopped by {signal} after the batch in flight; run the same command again \
                 to resume"
            )?;
        }
        match self.counts.imbalances().as_slice() {
            [] => write!(f, "  counts add up; manifest: {}", self.manifest.display()),
            wrong => write!(f, "  COUNTS DO NOT ADD UP: {}", wrong.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imbalances_name_the_broken_equation() {
        let mut c = Counts {
            read: 10,
            malformed: 1,
            duplicates: 2,
            unique: 7,
            empty: 1,
            embedded: 5,
            failed: 1,
            output_rows: 5,
            ..Counts::default()
        };
        assert!(c.imbalances().is_empty());
        c.embedded = 4;
        let wrong = c.imbalances();
        assert_eq!(wrong.len(), 2, "{wrong:?}");
        assert!(wrong[0].starts_with("unique 7"), "{wrong:?}");
    }
}
