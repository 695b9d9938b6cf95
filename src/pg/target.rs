//! What to embed and how: the table and its columns, the options of a scan and of a queue
//! worker, and what a run reports.

use std::time::Duration;

use crate::Prompt;

/// The table to read texts from, and where its vectors go: into its own vector column (in
/// place), or into a separate table ([`Target::with_vector_table`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Target {
    /// `table` or `schema.table`.
    pub table: String,
    /// A unique, ordered column: integer, bigint, text, uuid, ...
    pub id: String,
    /// The text to embed; rows where it is NULL are skipped.
    pub text: String,
    /// A pgvector `vector(n)` or `halfvec(n)`, or a `real[]` column: of `table`, or of
    /// `vector_table` when set.
    pub vector: String,
    /// An SQL condition on the table's rows, ANDed to every read; trusted input.
    pub filter: Option<String>,
    /// The `bigint` column that holds the id of the run that wrote a row's vector; added if
    /// missing. Default `embedding_run`.
    pub run_column: String,
    /// The `bytea` column that holds the SHA-256 of the text a vector was made from, so rows
    /// whose text changed since are embedded again; added if missing. Default
    /// `embedding_text_hash`. Finding them costs a scan one server-side hash per row that
    /// already has a vector.
    pub hash_column: String,
    /// A separate table for the vectors: (id, vector, run, hash), upserted. Default none
    /// (in place).
    pub vector_table: Option<String>,
}

impl Target {
    /// A target written in place, with no filter, the run column `embedding_run` and the hash
    /// column `embedding_text_hash`.
    pub fn new(
        table: impl Into<String>,
        id: impl Into<String>,
        text: impl Into<String>,
        vector: impl Into<String>,
    ) -> Self {
        Self {
            table: table.into(),
            id: id.into(),
            text: text.into(),
            vector: vector.into(),
            filter: None,
            run_column: "embedding_run".into(),
            hash_column: "embedding_text_hash".into(),
            vector_table: None,
        }
    }

    /// Only rows where this SQL condition holds (e.g. `lang = 'en'`). Default none.
    pub fn with_filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// The column that references the writing run. Default `embedding_run`.
    pub fn with_run_column(mut self, column: impl Into<String>) -> Self {
        self.run_column = column.into();
        self
    }

    /// The column that holds the embedded text's hash. Default `embedding_text_hash`.
    pub fn with_hash_column(mut self, column: impl Into<String>) -> Self {
        self.hash_column = column.into();
        self
    }

    /// Writes vectors to `table` instead of the source table: one row per source row, with
    /// the id (same column name and type), the vector column, the run and the hash columns,
    /// upserted on the id. Created if missing (`vector(n)`, or `real[]` without pgvector);
    /// create it yourself for `halfvec(n)`. Default none (in place).
    pub fn with_vector_table(mut self, table: impl Into<String>) -> Self {
        self.vector_table = Some(table.into());
        self
    }
}

/// Options of [`crate::pg::embed_table`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Rows read, embedded and written per transaction. Default 256.
    pub batch_rows: usize,
    /// Stop after this many batches (a time-sliced job; a rerun continues). Default none.
    pub max_batches: Option<usize>,
    /// The prompt texts get. Default the model's document prompt.
    pub prompt: Prompt,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            batch_rows: 256,
            max_batches: None,
            prompt: Prompt::Document,
        }
    }
}

impl ScanOptions {
    /// Rows per batch and transaction. Default 256; larger batches amortize the round trips,
    /// smaller ones lose less work to a crash.
    pub fn with_batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows;
        self
    }

    /// Stop after `batches` batches. Default none (until no row is left).
    pub fn with_max_batches(mut self, batches: usize) -> Self {
        self.max_batches = Some(batches);
        self
    }

    /// The prompt. Default [`Prompt::Document`].
    pub fn with_prompt(mut self, prompt: Prompt) -> Self {
        self.prompt = prompt;
        self
    }
}

/// Options of a queue [`crate::pg::Worker`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueueOptions {
    /// The queue table. Default `rembed_queue`.
    pub queue: String,
    /// Ids claimed, embedded and written at a time. Default 256.
    pub batch_rows: usize,
    /// How long a claim holds before other workers may take the ids back. Default 10 minutes;
    /// it must outlast embedding one batch.
    pub lease: Duration,
    /// A lease that expires this many times marks its id failed instead of pending. Default 3.
    pub max_attempts: i32,
    /// The prompt texts get. Default the model's document prompt.
    pub prompt: Prompt,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            queue: "rembed_queue".into(),
            batch_rows: 256,
            lease: Duration::from_secs(600),
            max_attempts: 3,
            prompt: Prompt::Document,
        }
    }
}

impl QueueOptions {
    /// The queue table. Default `rembed_queue`.
    pub fn with_queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Ids per claim. Default 256.
    pub fn with_batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows;
        self
    }

    /// The lease. Default 10 minutes.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Expired leases before an id is failed. Default 3.
    pub fn with_max_attempts(mut self, attempts: i32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The prompt. Default [`Prompt::Document`].
    pub fn with_prompt(mut self, prompt: Prompt) -> Self {
        self.prompt = prompt;
        self
    }
}

/// What a run did; the same counts are in its `rembed_runs` row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// The run's id in `rembed_runs`.
    pub run: i64,
    /// Rows whose vector this run wrote.
    pub written: u64,
    /// Rows that could not be embedded: (id as text, reason).
    pub failed: Vec<(String, String)>,
    /// Batches (transactions) committed.
    pub batches: u64,
    /// Expired leases this worker put back (queue mode).
    pub reclaimed: u64,
}
