//! The job's error type: what stops a corpus job before or during its run.
//!
//! A record that cannot be embedded is never an error here: it is counted and listed in the
//! report. These variants are the conditions under which going on would lose or mix data, or
//! would do nothing useful (a text field that no record has). Each message says what happened
//! and what to do about it.

use std::path::PathBuf;

/// Everything that stops a corpus job or its verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Occurs when the model fails as a whole (it cannot be loaded, its tokenizer is broken).
    #[error(transparent)]
    Embed(#[from] crate::Error),

    /// Occurs when a file or directory of the input or output cannot be read or written.
    #[error("cannot {action} {}: {source}{}", .path.display(), hint(.source))]
    Io {
        /// What the job was doing: `read`, `write`, `create`, `delete`, `lock`, ...
        action: &'static str,
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

    /// Occurs when the output directory was written with another model (other weights or
    /// config), dimension, prompt or normalization: adding to it would mix vector spaces.
    #[error(
        "{} was written with {field} `{existing}`, but this run uses `{requested}`; \
         refusing to mix vector spaces: run with the model and settings that wrote it, \
         or use a new output directory",
        .output.display()
    )]
    ModelMismatch {
        /// The output directory.
        output: PathBuf,
        /// Which property differs (`model`, `weights`, `config`, `dim`, `prompt`, ...).
        field: &'static str,
        /// The value recorded in the existing output.
        existing: String,
        /// The value of this run.
        requested: String,
    },

    /// Occurs when the output directory holds shards of another layout (another shard count, or
    /// sharded and unsharded outputs together), whose ids would overlap with this run's.
    #[error(
        "{} holds output of {existing}, but this run is {requested}; one directory holds one \
         shard layout: {advice}",
        .output.display()
    )]
    ShardLayout {
        /// The output directory.
        output: PathBuf,
        /// The layout found (`shard 2/4`, `an unsharded run`).
        existing: String,
        /// The layout of this run.
        requested: String,
        /// How to run into this directory, or that a new one is needed.
        advice: String,
    },

    /// Occurs when part files are present without the manifest that records their model.
    #[error(
        "{} has part files but no manifest {manifest}, so which model wrote them is unknown: \
         move the part files away or use a new output directory",
        .output.display()
    )]
    MissingManifest {
        /// The output directory.
        output: PathBuf,
        /// The manifest file name that was expected.
        manifest: String,
    },

    /// Occurs when `verify` is pointed at a directory with no job output at all.
    #[error(
        "{} holds no job output (no _manifest*.json, no part files): check the path, or run \
         the job into it first",
        .output.display()
    )]
    NoOutput {
        /// The directory.
        output: PathBuf,
    },

    /// Occurs when another process is already running the same shard into the same directory.
    #[error(
        "another job holds {}: the same shard is already running into this directory; wait for \
         it to finish, or stop it",
        .lock.display()
    )]
    AlreadyRunning {
        /// The lock file.
        lock: PathBuf,
    },

    /// Occurs when a shard specification or environment does not describe a shard.
    #[error("invalid shard `{spec}`: {reason}")]
    InvalidShard {
        /// What was given (`--shard` value or the environment variables).
        spec: String,
        /// Why it was refused, and what to pass instead.
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

    /// Occurs when no record, or fewer than half, of the first records of the input has the
    /// text field: a typo in the field name would otherwise embed nothing and report success.
    #[error(
        "{present} of the first {sampled} records of {} have a `{field}` field; \
         fields seen: {}{}: pass the field holding the text (--text-field)",
        .input.display(),
        .seen.join(", "),
        .suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
    )]
    TextFieldMissing {
        /// The input file.
        input: PathBuf,
        /// The text field asked for.
        field: String,
        /// Records read to decide.
        sampled: usize,
        /// How many of them have the field (a `null` counts as present).
        present: usize,
        /// Field names the records have, most common first.
        seen: Vec<String>,
        /// The seen field closest to `field`, if one is close.
        suggestion: Option<String>,
    },
}

/// What to do about the common I/O failures.
fn hint(error: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            "; free space on that disk or write elsewhere, then run again (finished parts are kept)"
        }
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            "; check the permissions, or choose another path"
        }
        ErrorKind::NotFound => "; check the path",
        _ => "",
    }
}

impl Error {
    /// Maps an I/O error on `path` while doing `action` (`read`, `write`, ...).
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn parquet(
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(parquet::errors::ParquetError) -> Self {
        let path = path.into();
        move |source| Self::Parquet { path, source }
    }
}
