//! [`JobConfig`]: what a corpus job reads, where it writes, and how often it checkpoints.

use std::path::{Path, PathBuf};

use super::error::JobError;
use super::shard::Shard;

/// Settings of a corpus job. Every field but the paths has a default; change them with the
/// `with_*` setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobConfig {
    pub(crate) input: PathBuf,
    pub(crate) output: PathBuf,
    pub(crate) id_field: String,
    pub(crate) text_field: String,
    pub(crate) checkpoint_every: usize,
    pub(crate) shard: Shard,
    pub(crate) price_per_hour: Option<f64>,
    pub(crate) progress: bool,
    pub(crate) batch_records: usize,
}

impl JobConfig {
    /// A job that embeds the JSONL file `input` into the directory `output`.
    pub fn new(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Self {
        Self {
            input: input.into(),
            output: output.into(),
            id_field: "id".into(),
            text_field: "text".into(),
            checkpoint_every: 10_000,
            shard: Shard::ALL,
            price_per_hour: None,
            progress: true,
            batch_records: 4096,
        }
    }

    /// The JSONL field holding each record's unique id (string or number). Default `id`.
    pub fn with_id_field(mut self, field: impl Into<String>) -> Self {
        self.id_field = field.into();
        self
    }

    /// The JSONL field holding each record's text. Default `text`.
    pub fn with_text_field(mut self, field: impl Into<String>) -> Self {
        self.text_field = field.into();
        self
    }

    /// Records per part file, which is also how often the output is made durable. Default
    /// 10,000. A crash loses at most this many records' work; each checkpoint costs two fsyncs,
    /// and the open part's vectors are held in memory until it is written.
    pub fn with_checkpoint_every(mut self, records: usize) -> Self {
        self.checkpoint_every = records;
        self
    }

    /// Embeds only this shard's records. Default: the whole input.
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// Adds the cost so far and the projected total, at this price per hour in USD, to the
    /// progress and the manifest. Default: no cost.
    pub fn with_price_per_hour(mut self, usd: f64) -> Self {
        self.price_per_hour = Some(usd);
        self
    }

    /// Whether to draw a progress bar when stderr is a terminal. Default true. Log lines every
    /// 30 s (through `tracing`, target `rembed::job`) are written either way.
    pub fn with_progress(mut self, show: bool) -> Self {
        self.progress = show;
        self
    }

    /// Records handed to the model per call (never more than a part file holds). Default 4096:
    /// the model sorts each call's texts by length, so larger calls pad less on corpora of mixed
    /// lengths; one call's vectors take `4096 * dim * 4` bytes (16 MiB at 1024 dimensions).
    pub fn with_batch_records(mut self, records: usize) -> Self {
        self.batch_records = records;
        self
    }

    /// The input file.
    pub fn input(&self) -> &Path {
        &self.input
    }

    /// The output directory.
    pub fn output(&self) -> &Path {
        &self.output
    }

    pub(crate) fn validate(&self) -> Result<(), JobError> {
        let invalid = |option, reason: &str| {
            Err(JobError::InvalidOption {
                option,
                reason: reason.into(),
            })
        };
        if self.checkpoint_every == 0 {
            return invalid("checkpoint_every", "must be at least 1");
        }
        if self.batch_records == 0 {
            return invalid("batch_records", "must be at least 1");
        }
        if self.id_field == self.text_field {
            return invalid("id_field", "must differ from the text field");
        }
        match self.price_per_hour {
            Some(p) if !p.is_finite() || p < 0.0 => {
                invalid("price_per_hour", "must be a non-negative number")
            }
            _ => Ok(()),
        }
    }
}
