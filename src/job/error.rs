//! The job's error type: what stops a corpus job before or during its run.
//!
//! A record that cannot be embedded is never an error here: it is counted and listed in the
//! report. These variants are the conditions under which going on would lose or mix data.

use std::path::PathBuf;

/// Everything that stops a corpus job or its verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// Occurs when the model fails as a whole (it cannot be loaded, its tokenizer is broken).
    #[error(transparent)]
    Embed(#[from] crate::Error),

    /// Occurs when a file or directory of the input or output cannot be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// Occurs when a Parquet part file cannot be written or read back.
    #[error("parquet file {}: {source}", .path.display())]
    Parquet {
        /// The part file.
        path: PathBuf,
        /// What the Parquet library said.
        source: parquet::errors::ParquetError,
    },

    /// Occurs when rows cannot be assembled into an Arrow batch (a bug, or a schema that
    /// changed under a part file).
    #[error("arrow batch for {}: {source}", .path.display())]
    Arrow {
        /// The part file the batch was for.
        path: PathBuf,
        /// What Arrow said.
        source: arrow_schema::ArrowError,
    },

    /// Occurs when a manifest or part file exists but does not hold what the job wrote.
    #[error("malformed {}: {reason}", .path.display())]
    Malformed {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Occurs when the output directory was written with another model, dimension, prompt or
    /// normalization: adding to it would mix vector spaces.
    #[error(
        "{} was written with {field} `{existing}`, but this run uses `{requested}`; \
         refusing to mix vector spaces: use a new output directory",
        .output.display()
    )]
    ModelMismatch {
        /// The output directory.
        output: PathBuf,
        /// Which property differs (`model`, `dim`, `prompt`, ...).
        field: &'static str,
        /// The value recorded in the existing output.
        existing: String,
        /// The value of this run.
        requested: String,
    },

    /// Occurs when the output directory holds shards of another layout (another shard count, or
    /// sharded and unsharded outputs together), whose ids would overlap with this run's.
    #[error("{} holds output of {existing}, but this run is {requested}; use a new output directory", .output.display())]
    ShardLayout {
        /// The output directory.
        output: PathBuf,
        /// The layout found (`shard 2/4`, `an unsharded run`).
        existing: String,
        /// The layout of this run.
        requested: String,
    },

    /// Occurs when part files are present without the manifest that records their model.
    #[error("{} has part files but no manifest {manifest}; cannot tell which model wrote them", .output.display())]
    MissingManifest {
        /// The output directory.
        output: PathBuf,
        /// The manifest file name that was expected.
        manifest: String,
    },

    /// Occurs when another process is already running the same shard into the same directory.
    #[error("another job holds {}: the same shard is already running", .lock.display())]
    AlreadyRunning {
        /// The lock file.
        lock: PathBuf,
    },

    /// Occurs when a shard specification or environment does not describe a shard.
    #[error("invalid shard `{spec}`: {reason}")]
    InvalidShard {
        /// What was given (`--shard` value or the environment variables).
        spec: String,
        /// Why it was refused.
        reason: String,
    },

    /// Occurs when a setting cannot work (zero checkpoint interval, negative price).
    #[error("invalid job option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// Why it was refused.
        reason: String,
    },
}

impl JobError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub(crate) fn parquet(
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(parquet::errors::ParquetError) -> Self {
        let path = path.into();
        move |source| Self::Parquet { path, source }
    }
}
