//! PostgreSQL + pgvector: embed a table in place or into a separate table, or drain a work
//! queue shared by many workers.
//!
//! Every mode reads texts from one table ([`Target`]: table, unique ordered id, text column,
//! vector column, optional filter) and writes vectors to a pgvector `vector(n)` or
//! `halfvec(n)`, or a `real[]` column: the table's own (in place), or that of a separate table
//! (id, vector, run, hash; [`Target::with_vector_table`]), upserted with
//! `INSERT ... ON CONFLICT (id) DO UPDATE`. Every written row points to the run that wrote it
//! and holds the SHA-256 of the text it was made from: rembed keeps a runs table,
//! `rembed_runs` (model, revision, dimension, precision, prompt, rembed version, host, start
//! and end, rows written and failed), and adds a `bigint` run column (default `embedding_run`)
//! and a `bytea` hash column (default `embedding_text_hash`) next to the vector column. A row
//! whose text changed after it was embedded no longer matches its hash, and is embedded again
//! by the next scan or [`Worker::enqueue_missing`].
//!
//! - **Scan** ([`embed_table`]): keyset pagination over the id (`WHERE id > $last AND text
//!   IS NOT NULL AND <no vector, or a stale one> ORDER BY id LIMIT n`). Each batch's vectors
//!   go through a binary `COPY` into a temporary table and one `UPDATE ... FROM` (or upsert),
//!   in one transaction with the run's counts, so a crash leaves no row half written and none
//!   counted twice. A rerun picks up the rows that still need a vector: it continues where
//!   the last run stopped, and retries rows that failed.
//! - **Queue** ([`create_queue`], [`Worker`]): a table of pending ids (status `pending`,
//!   `processing`, `done` or `failed`, with the error text and the attempt count). Workers
//!   claim ids with `FOR UPDATE SKIP LOCKED` under a lease (a deadline), write vectors and mark
//!   them done in one transaction, and put the ids of dead workers' expired leases back to
//!   pending (or to failed after [`QueueOptions::with_max_attempts`] attempts). Any number of
//!   workers on any number of machines can drain one queue.
//! - Vectors made elsewhere go through the same path: [`Writer`] (scan order is the caller's)
//!   and [`Worker::for_vectors`] with [`Worker::complete`].
//!
//! Before any work starts, the tables, their columns and the vector column's dimension are
//! checked against the model ([`PgError`]). Uses only rembed's public API.

mod embed_rows;
mod error;
mod queue;
mod runs;
mod scan;
mod schema;
mod target;
mod writer;

pub use error::{connect, PgError, Result};
pub use queue::{create_queue, Worker};
pub use runs::{RunInfo, RUNS_TABLE};
pub use scan::embed_table;
pub use target::{QueueOptions, RunReport, ScanOptions, Target};
pub use writer::{Embedded, Writer};
