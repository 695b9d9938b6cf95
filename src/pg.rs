//! PostgreSQL + pgvector: embed a table in place, or drain a work queue shared by many workers.
//!
//! Both modes read texts from one table ([`Target`]: table, unique ordered id, text column,
//! vector column, optional filter) and write the vectors back into that table's vector column,
//! a pgvector `vector(n)` or a `real[]` column. Every written row points to the run that wrote
//! it: rembed keeps a runs table, `rembed_runs` (model, revision, dimension, precision, prompt,
//! rembed version, host, start and end, rows written and failed), and adds a `bigint` column
//! to the target (default `embedding_run`, [`Target::with_run_column`]) that holds the run's id.
//!
//! - **In place** ([`embed_in_place`]): keyset pagination over the id (`WHERE id > $last AND
//!   text IS NOT NULL AND vector IS NULL ORDER BY id LIMIT n`). Each batch's vectors go through
//!   a binary `COPY` into a temporary table and one `UPDATE ... FROM`, in one transaction with
//!   the run's counts, so a crash leaves no row half written and none counted twice. A rerun
//!   picks up the rows that still have no vector: it continues where the last run stopped, and
//!   retries rows that failed.
//! - **Queue** ([`create_queue`], [`enqueue_missing`], [`Worker`]): a table of pending ids
//!   (status `pending`, `processing`, `done` or `failed`, with the error text and the attempt
//!   count). Workers claim ids with `FOR UPDATE SKIP LOCKED` under a lease (a deadline), write
//!   vectors and mark them done in one transaction, and put the ids of dead workers' expired
//!   leases back to pending (or to failed after [`QueueOptions::with_max_attempts`] attempts).
//!   Any number of workers on any number of machines can drain one queue.
//!
//! Before any work starts, the table, its columns and the vector column's dimension are
//! checked against the model ([`PgError`]). Uses only rembed's public API.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pgvector::Vector;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, Config, NoTls};

use crate::{Embedder, Prompt, Request};

/// The runs table: one row per in-place run or queue worker.
pub const RUNS_TABLE: &str = "rembed_runs";

/// Result alias of this module.
pub type Result<T, E = PgError> = std::result::Result<T, E>;

/// What can go wrong between rembed and PostgreSQL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// Occurs when the connection string cannot be parsed.
    #[error("bad connection string: {reason}; write it as `host=/run/postgresql user=me dbname=mydb` or `postgresql://me@localhost:5432/mydb`")]
    BadConnectionString {
        /// What the parser said.
        reason: String,
    },
    /// Occurs when the server cannot be reached or refuses the login.
    #[error("cannot connect to PostgreSQL: {source}; check that the server runs and the host, port, user and database of the connection string")]
    Connect {
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },
    /// Occurs when the table does not exist (or is not visible on the search path).
    #[error("table {table} does not exist; check its name (schema.table) and the database of the connection string")]
    MissingTable {
        /// The table as given.
        table: String,
    },
    /// Occurs when the table has no column of that name.
    #[error("table {table} has no column `{column}` (it has: {existing}); give the right --{role} column")]
    MissingColumn {
        /// The table as given.
        table: String,
        /// The missing column.
        column: String,
        /// What the column is for: `id`, `text` or `vector`.
        role: &'static str,
        /// The table's columns, comma-separated.
        existing: String,
    },
    /// Occurs when the vector column holds vectors of another size than the model makes.
    #[error("column {table}.{column} is {found} but model {model} makes {expected}-dimensional vectors; alter the column to vector({expected}) or load a model of that size")]
    DimensionMismatch {
        /// The table as given.
        table: String,
        /// The vector column.
        column: String,
        /// The column's type, e.g. `vector(768)`.
        found: String,
        /// The model's dimension.
        expected: usize,
        /// The model's name.
        model: String,
    },
    /// Occurs when the vector column is neither pgvector's `vector` nor `real[]`.
    #[error("column {table}.{column} has type {found}; rembed writes pgvector's vector(n) or real[] columns")]
    UnsupportedColumnType {
        /// The table as given.
        table: String,
        /// The vector column.
        column: String,
        /// Its type.
        found: String,
    },
    /// Occurs when an option is out of range.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// Occurs when a statement fails on the server or the connection drops.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    /// Occurs when the embedder fails as a whole (a failed row is recorded instead).
    #[error(transparent)]
    Embed(#[from] crate::Error),
}

/// The table to read texts from and write vectors to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Target {
    /// `table` or `schema.table`.
    pub table: String,
    /// A unique, ordered column: integer, bigint, text, uuid, ...
    pub id: String,
    /// The text to embed; rows where it is NULL are skipped.
    pub text: String,
    /// A pgvector `vector(n)` or a `real[]` column.
    pub vector: String,
    /// An SQL condition on the table's rows, ANDed to every read; trusted input.
    pub filter: Option<String>,
    /// The `bigint` column that holds the id of the run that wrote a row's vector; added if
    /// missing. Default `embedding_run`.
    pub run_column: String,
}

impl Target {
    /// A target with no filter and the run column `embedding_run`.
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
}

/// Options of [`embed_in_place`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InPlaceOptions {
    /// Rows read, embedded and written per transaction. Default 256.
    pub batch_rows: usize,
    /// Stop after this many batches (a time-sliced job; a rerun continues). Default none.
    pub max_batches: Option<usize>,
    /// The prompt texts get. Default the model's document prompt.
    pub prompt: Prompt,
}

impl Default for InPlaceOptions {
    fn default() -> Self {
        Self {
            batch_rows: 256,
            max_batches: None,
            prompt: Prompt::Document,
        }
    }
}

impl InPlaceOptions {
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

/// Options of a queue [`Worker`].
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

/// Connects, telling a bad connection string from an unreachable server.
pub fn connect(conninfo: &str) -> Result<Client> {
    let config = Config::from_str(conninfo).map_err(|e| PgError::BadConnectionString {
        reason: e.to_string(),
    })?;
    config
        .connect(NoTls)
        .map_err(|source| PgError::Connect { source })
}

/// `"a"."b"` from `a.b`; quotes doubled.
fn quote_name(name: &str) -> String {
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How the vector column takes a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VectorKind {
    /// pgvector `vector` (any dimension when the column has none).
    Vector,
    /// `real[]`.
    Real,
}

/// The target, checked against the database and the model, with its SQL pieces quoted.
struct Checked {
    table: String,
    id: String,
    text: String,
    vector: String,
    run: String,
    id_type: String,
    kind: VectorKind,
    filter: String,
}

/// Refuses a target whose table, columns or vector dimension do not fit before any work starts.
fn check(client: &mut Client, target: &Target, dim: usize, model: &str) -> Result<Checked> {
    let table = quote_name(&target.table);
    let oid: Option<u32> = client
        .query_one("SELECT to_regclass($1)::oid", &[&table])?
        .get(0);
    let Some(oid) = oid else {
        return Err(PgError::MissingTable {
            table: target.table.clone(),
        });
    };
    let columns: Vec<(String, String)> = client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&oid],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let type_of = |column: &str, role: &'static str| {
        columns
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, ty)| ty.clone())
            .ok_or_else(|| PgError::MissingColumn {
                table: target.table.clone(),
                column: column.into(),
                role,
                existing: columns
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    };
    let id_type = type_of(&target.id, "id")?;
    type_of(&target.text, "text")?;
    let vector_type = type_of(&target.vector, "vector")?;
    let kind = if vector_type == "real[]" {
        VectorKind::Real
    } else if vector_type == "vector" || vector_type.starts_with("vector(") {
        if let Some(n) = vector_type
            .strip_prefix("vector(")
            .and_then(|s| s.strip_suffix(')'))
        {
            if n.parse::<usize>().ok() != Some(dim) {
                return Err(PgError::DimensionMismatch {
                    table: target.table.clone(),
                    column: target.vector.clone(),
                    found: vector_type,
                    expected: dim,
                    model: model.into(),
                });
            }
        }
        VectorKind::Vector
    } else {
        return Err(PgError::UnsupportedColumnType {
            table: target.table.clone(),
            column: target.vector.clone(),
            found: vector_type,
        });
    };
    let has_run_column = columns.iter().any(|(n, _)| *n == target.run_column);
    let checked = Checked {
        id: quote_ident(&target.id),
        text: quote_ident(&target.text),
        vector: quote_ident(&target.vector),
        run: quote_ident(&target.run_column),
        id_type,
        kind,
        filter: target
            .filter
            .as_ref()
            .map(|f| format!(" AND ({f})"))
            .unwrap_or_default(),
        table,
    };
    setup(client, &checked, has_run_column)?;
    Ok(checked)
}

/// Creates the runs table and the target's run column if missing, under an advisory lock so
/// that workers starting together do not race on `CREATE TABLE`.
fn setup(client: &mut Client, t: &Checked, has_run_column: bool) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock(7265626564)", &[])?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (
            id bigserial PRIMARY KEY,
            mode text NOT NULL,
            target text NOT NULL,
            model text NOT NULL,
            revision text NOT NULL,
            dim integer NOT NULL,
            precision text NOT NULL,
            prompt text NOT NULL,
            rembed_version text NOT NULL,
            host text NOT NULL,
            worker text NOT NULL,
            started_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            rows_written bigint NOT NULL DEFAULT 0,
            rows_failed bigint NOT NULL DEFAULT 0,
            batches bigint NOT NULL DEFAULT 0,
            last_id text
        )"
    ))?;
    if !has_run_column {
        tx.batch_execute(&format!(
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} bigint REFERENCES {RUNS_TABLE}(id)",
            t.table, t.run
        ))?;
    }
    tx.commit()?;
    Ok(())
}

static WORKERS: AtomicUsize = AtomicUsize::new(0);

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// A writer of one run: the checked target, the run's row and the batch table.
struct Sink<'e> {
    client: Client,
    t: Checked,
    embedder: &'e Embedder,
    request: Request,
    report: RunReport,
    copy_types: Vec<Type>,
    worker: String,
}

impl<'e> Sink<'e> {
    fn open(
        embedder: &'e Embedder,
        conninfo: &str,
        target: &Target,
        mode: &str,
        prompt: &Prompt,
    ) -> Result<Self> {
        let mut client = connect(conninfo)?;
        let spec = embedder.spec();
        let t = check(&mut client, target, embedder.dim(), &spec.name)?;
        let worker = format!(
            "{}:{}:{}",
            host(),
            std::process::id(),
            WORKERS.fetch_add(1, Ordering::Relaxed)
        );
        let prompt_text = embedder.resolve_prompt(prompt)?;
        let dim = embedder.dim() as i32;
        let run: i64 = client
            .query_one(
                &format!(
                    "INSERT INTO {RUNS_TABLE} (mode, target, model, revision, dim, precision, \
                     prompt, rembed_version, host, worker) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id"
                ),
                &[
                    &mode,
                    &format!("{}.{}", target.table, target.vector),
                    &spec.name,
                    &spec.revision,
                    &dim,
                    &format!("{:?}", embedder.precision()),
                    &prompt_text,
                    &env!("CARGO_PKG_VERSION"),
                    &host(),
                    &worker,
                ],
            )?
            .get(0);
        // Rows vanish at every commit, and with a rolled-back transaction.
        let column_type = match t.kind {
            VectorKind::Vector => "vector",
            VectorKind::Real => "real[]",
        };
        client.batch_execute(&format!(
            "CREATE TEMP TABLE rembed_batch (id text PRIMARY KEY, v {column_type}) \
             ON COMMIT DELETE ROWS"
        ))?;
        let copy_types = client
            .prepare("SELECT id, v FROM rembed_batch")?
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        Ok(Self {
            client,
            t,
            embedder,
            request: Request::documents()
                .with_prompt(prompt.clone())
                .keep_going(true),
            report: RunReport {
                run,
                ..RunReport::default()
            },
            copy_types,
            worker,
        })
    }

    /// Embeds `rows` (id, text); returns the vectors of those that worked and the failures.
    #[allow(clippy::type_complexity)]
    fn embed(
        &self,
        rows: &[(String, String)],
    ) -> Result<(Vec<(String, Vec<f32>)>, Vec<(String, String)>)> {
        let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
        let out = self.embedder.embed_with(&texts, &self.request)?;
        let failed: HashSet<usize> = out.failures.iter().map(|f| f.index).collect();
        let failures = out
            .failures
            .iter()
            .map(|f| (rows[f.index].0.clone(), f.reason.clone()))
            .collect();
        let vectors = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| !failed.contains(i))
            .map(|(i, (id, _))| (id.clone(), out.dense.row(i).to_vec()))
            .collect();
        Ok((vectors, failures))
    }

    /// Binary COPY of `vectors` into the batch table, inside `tx`.
    fn copy(
        tx: &mut postgres::Transaction<'_>,
        types: &[Type],
        kind: VectorKind,
        vectors: Vec<(String, Vec<f32>)>,
    ) -> Result<()> {
        let sink = tx.copy_in("COPY rembed_batch (id, v) FROM STDIN (FORMAT binary)")?;
        let mut writer = BinaryCopyInWriter::new(sink, types);
        for (id, v) in vectors {
            match kind {
                VectorKind::Vector => writer.write(&[&id, &Vector::from(v)])?,
                VectorKind::Real => writer.write(&[&id, &v])?,
            }
        }
        writer.finish()?;
        Ok(())
    }

    /// Adds a batch's counts to the run's row, inside the batch's transaction.
    fn count(
        tx: &mut postgres::Transaction<'_>,
        run: i64,
        written: u64,
        failed: usize,
        last_id: Option<&str>,
    ) -> Result<()> {
        tx.execute(
            &format!(
                "UPDATE {RUNS_TABLE} SET rows_written = rows_written + $2, \
                 rows_failed = rows_failed + $3, batches = batches + 1, \
                 last_id = coalesce($4, last_id) WHERE id = $1"
            ),
            &[&run, &(written as i64), &(failed as i64), &last_id],
        )?;
        Ok(())
    }

    fn finish(mut self) -> Result<RunReport> {
        self.client.execute(
            &format!("UPDATE {RUNS_TABLE} SET finished_at = now() WHERE id = $1"),
            &[&self.report.run],
        )?;
        Ok(self.report)
    }
}

/// Embeds every row of `target` whose text is set and vector is NULL, in id order, and writes
/// the vectors back in place; see the module doc. Rows that fail are left NULL (a rerun tries
/// them again) and listed in the report.
pub fn embed_in_place(
    embedder: &Embedder,
    conninfo: &str,
    target: &Target,
    options: &InPlaceOptions,
) -> Result<RunReport> {
    if options.batch_rows == 0 {
        return Err(PgError::InvalidOption {
            option: "batch_rows",
            reason: "must be at least 1".into(),
        });
    }
    let mut sink = Sink::open(embedder, conninfo, target, "in-place", &options.prompt)?;
    let t = &sink.t;
    let page = |after: &str| {
        format!(
            "SELECT {id}::text, {text}::text FROM {table} \
             WHERE {after} {text} IS NOT NULL AND {vector} IS NULL{filter} \
             ORDER BY {table}.{id} LIMIT {limit}",
            id = t.id,
            text = t.text,
            table = t.table,
            vector = t.vector,
            filter = t.filter,
            limit = options.batch_rows,
        )
    };
    let first = page("");
    let next = page(&format!("{} > CAST($1::text AS {}) AND", t.id, t.id_type));
    let update = format!(
        "UPDATE {table} SET {vector} = b.v, {run} = $1 FROM rembed_batch b \
         WHERE {table}.{id} = CAST(b.id AS {id_type}) AND {table}.{vector} IS NULL",
        table = t.table,
        vector = t.vector,
        run = t.run,
        id = t.id,
        id_type = t.id_type,
    );
    let mut last: Option<String> = None;
    loop {
        if options
            .max_batches
            .is_some_and(|max| sink.report.batches as usize >= max)
        {
            break;
        }
        let rows: Vec<(String, String)> = match &last {
            None => sink.client.query(&first, &[])?,
            Some(last) => sink.client.query(&next, &[last])?,
        }
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        let Some((last_id, _)) = rows.last() else {
            break;
        };
        last = Some(last_id.clone());
        let (vectors, failures) = sink.embed(&rows)?;
        let run = sink.report.run;
        let mut tx = sink.client.transaction()?;
        Sink::copy(&mut tx, &sink.copy_types, sink.t.kind, vectors)?;
        let written = tx.execute(&update, &[&run])?;
        Sink::count(&mut tx, run, written, failures.len(), last.as_deref())?;
        tx.commit()?;
        sink.report.written += written;
        sink.report.batches += 1;
        for (id, reason) in &failures {
            tracing::warn!(id, reason, "row not embedded");
        }
        sink.report.failed.extend(failures);
    }
    sink.finish()
}

/// Creates the queue table `queue` if missing: one row per id of the target to embed.
pub fn create_queue(conninfo: &str, queue: &str) -> Result<()> {
    let mut client = connect(conninfo)?;
    let q = quote_name(queue);
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock(7265626565)", &[])?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {q} (
            id text PRIMARY KEY,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'processing', 'done', 'failed')),
            attempts integer NOT NULL DEFAULT 0,
            leased_by text,
            lease_until timestamptz,
            error text,
            run bigint,
            enqueued_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS {idx} ON {q} (status, id)",
        idx = quote_ident(&format!("{}_status", queue.replace('.', "_"))),
    ))?;
    tx.commit()?;
    Ok(())
}

/// Queues every row of `target` whose text is set and vector is NULL (and that is not queued
/// yet); returns how many were added.
pub fn enqueue_missing(conninfo: &str, target: &Target, queue: &str) -> Result<u64> {
    let mut client = connect(conninfo)?;
    let sql = format!(
        "INSERT INTO {q} (id) SELECT {id}::text FROM {table} \
         WHERE {text} IS NOT NULL AND {vector} IS NULL{filter} ON CONFLICT (id) DO NOTHING",
        q = quote_name(queue),
        id = quote_ident(&target.id),
        table = quote_name(&target.table),
        text = quote_ident(&target.text),
        vector = quote_ident(&target.vector),
        filter = target
            .filter
            .as_ref()
            .map(|f| format!(" AND ({f})"))
            .unwrap_or_default(),
    );
    Ok(client.execute(&sql, &[])?)
}

/// A queue worker: claims ids under a lease, embeds their texts, writes the vectors and marks
/// the ids done or failed. Its `rembed_runs` row counts what it did.
pub struct Worker<'e> {
    sink: Sink<'e>,
    options: QueueOptions,
    queue: String,
}

impl std::fmt::Debug for Worker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("worker", &self.sink.worker)
            .field("run", &self.sink.report.run)
            .finish()
    }
}

impl<'e> Worker<'e> {
    /// Connects and checks the target against the model; starts a run.
    pub fn new(
        embedder: &'e Embedder,
        conninfo: &str,
        target: &Target,
        options: QueueOptions,
    ) -> Result<Self> {
        if options.batch_rows == 0 || options.max_attempts < 1 || options.lease.is_zero() {
            return Err(PgError::InvalidOption {
                option: "queue options",
                reason: "batch_rows, max_attempts and lease must be positive".into(),
            });
        }
        let sink = Sink::open(embedder, conninfo, target, "queue", &options.prompt)?;
        let queue = quote_name(&options.queue);
        Ok(Self {
            sink,
            options,
            queue,
        })
    }

    /// This worker's name in the queue's `leased_by`: host, process id and a counter.
    pub fn name(&self) -> &str {
        &self.sink.worker
    }

    /// Puts ids whose lease expired (their worker died or stalled) back to pending, or to
    /// failed once they were claimed `max_attempts` times; returns how many.
    pub fn reclaim(&mut self) -> Result<u64> {
        let n = self.sink.client.execute(
            &format!(
                "UPDATE {q} SET status = CASE WHEN attempts >= $1 THEN 'failed' ELSE 'pending' END, \
                 error = CASE WHEN attempts >= $1 \
                    THEN 'lease expired after ' || attempts || ' attempts' ELSE error END, \
                 leased_by = NULL, lease_until = NULL, updated_at = now() \
                 WHERE status = 'processing' AND lease_until < now()",
                q = self.queue
            ),
            &[&self.options.max_attempts],
        )?;
        self.sink.report.reclaimed += n;
        Ok(n)
    }

    /// Claims up to `limit` pending ids (skipping those other workers hold) under this
    /// worker's lease, committed at once; returns them.
    pub fn claim(&mut self, limit: usize) -> Result<Vec<String>> {
        let rows = self.sink.client.query(
            &format!(
                "UPDATE {q} SET status = 'processing', leased_by = $1, \
                 lease_until = now() + make_interval(secs => $2), attempts = attempts + 1, \
                 updated_at = now() \
                 WHERE id IN (SELECT id FROM {q} WHERE status = 'pending' ORDER BY id \
                              LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING id",
                q = self.queue
            ),
            &[
                &self.sink.worker,
                &self.options.lease.as_secs_f64(),
                &(limit as i64),
            ],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Embeds and writes the claimed `ids`: done ones and their vectors in one transaction
    /// with the run's counts, failed ones with their error. Ids whose lease this worker lost
    /// meanwhile are left to their new holder.
    pub fn process(&mut self, ids: &[String]) -> Result<()> {
        let t = &self.sink.t;
        let rows: Vec<(String, String)> = self
            .sink
            .client
            .query(
                &format!(
                    "SELECT {id}::text, {text}::text FROM {table} \
                     WHERE {id} = ANY(CAST($1::text[] AS {id_type}[])) AND {text} IS NOT NULL",
                    id = t.id,
                    text = t.text,
                    table = t.table,
                    id_type = t.id_type,
                ),
                &[&ids],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let found: HashSet<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
        let mut failures: Vec<(String, String)> = ids
            .iter()
            .filter(|id| !found.contains(id.as_str()))
            .map(|id| (id.clone(), "no such row, or its text is NULL".to_string()))
            .collect();
        let (vectors, embed_failures) = self.sink.embed(&rows)?;
        failures.extend(embed_failures);
        let run = self.sink.report.run;
        let write = format!(
            "WITH done AS (
                UPDATE {q} SET status = 'done', leased_by = NULL, lease_until = NULL,
                    error = NULL, run = $2, updated_at = now()
                FROM rembed_batch b
                WHERE {q}.id = b.id AND {q}.status = 'processing' AND {q}.leased_by = $1
                RETURNING {q}.id)
             UPDATE {table} SET {vector} = b.v, {run_col} = $2
             FROM rembed_batch b JOIN done ON done.id = b.id
             WHERE {table}.{id} = CAST(b.id AS {id_type})",
            q = self.queue,
            table = t.table,
            vector = t.vector,
            run_col = t.run,
            id = t.id,
            id_type = t.id_type,
        );
        let fail = format!(
            "UPDATE {q} SET status = 'failed', error = $3, leased_by = NULL, lease_until = NULL, \
             run = $2, updated_at = now() \
             WHERE id = $4 AND status = 'processing' AND leased_by = $1",
            q = self.queue
        );
        let mut tx = self.sink.client.transaction()?;
        Sink::copy(&mut tx, &self.sink.copy_types, self.sink.t.kind, vectors)?;
        let written = tx.execute(&write, &[&self.sink.worker, &run])?;
        let mut failed = 0;
        for (id, reason) in &failures {
            failed += tx.execute(&fail, &[&self.sink.worker, &run, reason, id])? as usize;
        }
        Sink::count(&mut tx, run, written, failed, None)?;
        tx.commit()?;
        self.sink.report.written += written;
        self.sink.report.batches += 1;
        for (id, reason) in &failures {
            tracing::warn!(id, reason, "queued row failed");
        }
        self.sink.report.failed.extend(failures);
        Ok(())
    }

    /// Reclaims expired leases, then claims and processes batches until no id is pending.
    pub fn drain(&mut self) -> Result<()> {
        self.reclaim()?;
        loop {
            let ids = self.claim(self.options.batch_rows)?;
            if ids.is_empty() {
                return Ok(());
            }
            self.process(&ids)?;
        }
    }

    /// What this worker did so far.
    pub fn report(&self) -> &RunReport {
        &self.sink.report
    }

    /// Ends the run (its `finished_at`) and returns its report.
    pub fn finish(self) -> Result<RunReport> {
        self.sink.finish()
    }
}
