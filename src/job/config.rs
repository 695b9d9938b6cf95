//! [`Config`]: what a corpus job reads, where it writes, and how often it checkpoints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::Error;
use super::shard::Shard;

/// Settings of a corpus job. Every field but the paths has a default; change them with the
/// `with_*` setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    pub(crate) input: PathBuf,
    pub(crate) output: PathBuf,
    pub(crate) id_field: String,
    pub(crate) text_field: String,
    pub(crate) checkpoint_every: usize,
    pub(crate) shard: Shard,
    pub(crate) price_per_hour: Option<f64>,
    pub(crate) progress: bool,
    pub(crate) batch_records: usize,
    pub(crate) model_source: Option<String>,
    pub(crate) stop_on_signals: bool,
    pub(crate) log_every: Duration,
}

impl Config {
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
            model_source: None,
            stop_on_signals: false,
            log_every: Duration::from_secs(30),
        }
    }

    /// The string the embedder was loaded from (`Embedder::load`'s `model`): a directory, whose
    /// weight and config files are hashed (about 1 s per GB), or a registry name or repo id,
    /// looked up in the local hub cache. The digests identify the model in the manifest, so
    /// that resume accepts the same weights under another path and refuses other weights
    /// under the same one. Default: the embedder's registry name, which misses a registry
    /// model loaded from a directory.
    pub fn with_model_source(mut self, model: impl Into<String>) -> Self {
        self.model_source = Some(model.into());
        self
    }

    /// Whether the run handles SIGTERM and SIGINT: finish the batch in flight, checkpoint, and
    /// return a report whose `stopped_by` names the signal (exit with its
    /// [`super::StopSignal::exit_code`]); a second signal kills at once. Default false: a
    /// library does not take over a process's signals unless asked. The handlers are removed
    /// when the run returns.
    pub fn with_stop_on_signals(mut self, stop: bool) -> Self {
        self.stop_on_signals = stop;
        self
    }

    /// How often a plain progress line is logged (through `tracing`, target `rembed::job`),
    /// whether or not a bar is drawn. Default 30 s.
    pub fn with_log_every(mut self, every: Duration) -> Self {
        self.log_every = every;
        self
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

    /// Whether to draw a progress bar when stderr is a terminal. Default true. Plain log lines
    /// (see [`Config::with_log_every`]) are written either way.
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

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |option, reason: &str| {
            Err(Error::InvalidOption {
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
        if self.log_every.is_zero() {
            return invalid("log_every", "must be longer than zero");
        }
        match self.price_per_hour {
            Some(p) if !p.is_finite() || p < 0.0 => {
                invalid("price_per_hour", "must be a non-negative number")
            }
            _ => Ok(()),
        }
    }
}
