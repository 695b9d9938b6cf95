//! Corpus job (feature `job`): embed millions of JSONL records into a directory of Parquet
//! files, resumably, without duplicates, observably, split across machines if needed.
//!
//! How [`run`] goes:
//! 1. The output directory is locked for this shard and checked: an output written with another
//!    model, dimension, prompt or shard layout is refused ([`JobError::ModelMismatch`],
//!    [`JobError::ShardLayout`]); temporary files of an interrupted write are deleted.
//! 2. What is done is read back by id from the finished part files (never "skip the first N
//!    lines", which silently skips or repeats records when the input changes). An input that
//!    changed since the previous run is detected by its [`Fingerprint`] and reported.
//! 3. The input is streamed line by line. Each record is sorted into one bucket: malformed,
//!    another shard's (by a stable hash of its id, see [`Shard`]), a duplicate id (the first
//!    occurrence wins), already in the output, empty text, or to embed.
//! 4. Records to embed go to the model in batches; a record the model fails on is listed with
//!    its id and reason, and the job goes on.
//! 5. Every `checkpoint_every` records the part file is finished, fsynced and renamed into
//!    place, then the manifest is replaced the same way. A `kill -9` at any moment loses at
//!    most the records since the last checkpoint; running the same command again resumes.
//! 6. At the end the manifest gets the reconciliation [`Counts`], which must add up.
//!
//! Memory is bounded whatever the input size, except for one 16-byte hash per id of the shard
//! (for duplicates and resume): about 50 MB per million ids.
//!
//! Output layout, readable as is by `pyarrow.parquet.read_table(dir)` and
//! `polars.read_parquet(f"{dir}/*.parquet")`:
//! ```text
//! out/part-000000.parquet ...          id, metadata columns, metadata_extra, embedding
//! out/_manifest.json                   provenance, counts, failures, parts, cost
//! out/part-s0002of0008-000000.parquet  the same, per shard, when sharded
//! out/_manifest-s0002of0008.json
//! ```
//!
//! ```no_run
//! # fn main() -> Result<(), rembed::job::JobError> {
//! use rembed::job::{self, JobConfig, Shard};
//! let embedder = rembed::Embedder::load("all-minilm-l6-v2", rembed::Options::default())?;
//! let config = JobConfig::new("chunks.jsonl", "vectors/")
//!     .with_id_field("chunk_id")
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
mod input;
mod manifest;
mod model;
mod output;
mod progress;
mod records;
mod resume;
mod run;
mod sampler;
mod schema;
mod shard;
mod sorter;
mod verify;

pub use config::JobConfig;
pub use cost::CostEstimate;
pub use counts::{Counts, FailedRecord, Report};
pub use error::JobError;
pub use hash::{id_hash, shard_key};
pub use input::Fingerprint;
pub use manifest::{InputProvenance, Manifest, ModelProvenance, RunInfo, MANIFEST_FORMAT};
pub use output::PartInfo;
pub use run::run;
pub use schema::{ColumnType, MetaColumn};
pub use shard::Shard;
pub use verify::{verify, VerifyReport};
