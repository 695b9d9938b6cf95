//! Corpus job (feature `job`): embed millions of JSONL records into a directory of Parquet
//! files, resumably, without duplicates, observably, split across machines if needed.
//!
//! How [`run`] goes:
//! 1. The output directory is locked for this shard. The model is identified by what it is
//!    (SHA-256 of its weight and config files, the hub commit; see [`ModelIdentity`]).
//! 2. The first records of the input are read: they decide the metadata columns, and a text
//!    field that most of them lack is refused ([`Error::TextFieldMissing`]).
//! 3. Under a directory-wide lock, the output is checked and this run's shard layout claimed:
//!    an output written with another model, dimension, prompt or shard layout is refused
//!    ([`Error::ModelMismatch`], [`Error::ShardLayout`]); temporary files of an interrupted
//!    write are deleted. What is done is read back by id from the finished part files (never
//!    "skip the first N lines", which silently skips or repeats records when the input
//!    changes). An input that changed since the previous run is detected by its
//!    [`Fingerprint`] and reported.
//! 4. The input is streamed on, once, line by line. Each record is sorted into one bucket:
//!    malformed, another shard's (by a stable hash of its id, see [`Shard`]), a duplicate id
//!    (the first occurrence wins), already in the output, empty text, or to embed.
//! 5. Records to embed go to the model in batches; a record the model fails on, or whose vector
//!    is not finite, is listed with its id and reason, and the job goes on. Every record
//!    without a vector is listed in `_not_embedded*.jsonl` with why ([`Skipped`]).
//! 6. Every `checkpoint_every` records the part file is finished, fsynced and renamed into
//!    place, then the manifest is replaced the same way. A `kill -9` at any moment loses at
//!    most the records since the last checkpoint; with [`Config::with_stop_on_signals`],
//!    SIGTERM and SIGINT lose nothing but the batch in flight's successors. Running the same
//!    command again resumes.
//! 7. At the end the manifest gets the reconciliation [`Counts`], which must add up.
//!
//! Memory is bounded whatever the input size, except for about 24 bytes per id of the shard
//! (id hash and text hash, for duplicates and resume): about 70 MB per million ids.
//!
//! Output layout, readable as is by `pyarrow.parquet.read_table(dir)` and
//! `polars.read_parquet(f"{dir}/*.parquet")`:
//! ```text
//! out/part-000000.parquet ...          id, metadata columns, metadata_extra, embedding
//! out/_manifest.json                   provenance, counts, failures, parts, cost
//! out/_not_embedded.jsonl              every record without a vector, and why
//! out/part-s0002of0008-000000.parquet  the same, per shard, when sharded
//! out/_manifest-s0002of0008.json
//! ```
//!
//! ```no_run
//! # fn main() -> Result<(), rembed::job::Error> {
//! use rembed::job::{self, Shard};
//! let embedder = rembed::Embedder::load("all-minilm-l6-v2", rembed::Options::default())?;
//! let config = job::Config::new("chunks.jsonl", "vectors/")
//!     .with_id_field("chunk_id")
//!     .with_model_source("all-minilm-l6-v2")
//!     .with_shard(Shard::from_env(Some("auto/8"))?);
//! let report = job::run(&embedder, &config)?;
//! println!("{report}");
//! let check = job::verify("vectors/".as_ref(), None)?; // once every shard has finished
//! assert!(check.ok(), "{check}");
//! # Ok(())
//! # }
//! ```

mod config;
mod cost;
mod counts;
mod error;
mod hash;
mod id;
mod identity;
mod input;
mod manifest;
mod model;
mod output;
mod progress;
mod records;
mod resume;
mod run;
mod sample;
mod sampler;
mod schema;
mod shard;
mod skipped;
mod sorter;
mod stop;
mod verify;

pub use config::Config;
pub use cost::CostEstimate;
pub use counts::{Counts, FailedRecord, Report};
pub use error::Error;
pub use hash::{id_hash, shard_key};
pub use id::RecordId;
pub use identity::ModelIdentity;
pub use input::Fingerprint;
pub use manifest::{InputProvenance, Manifest, ModelProvenance, RunInfo, MANIFEST_FORMAT};
pub use output::PartInfo;
pub use run::run;
pub use schema::{ColumnType, MetaColumn};
pub use shard::Shard;
pub use skipped::{read_skipped, Skipped, Why};
pub use stop::StopSignal;
pub use verify::{verify, VerifyReport};
