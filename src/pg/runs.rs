//! The runs table, `rembed_runs`: one row per scan or queue worker, with what made the vectors
//! (model, revision, dimension, precision, prompt, rembed version, host) and counts that every
//! batch's transaction adds to, so they always match the rows written.

use std::sync::atomic::{AtomicUsize, Ordering};

use postgres::{Client, Transaction};

use crate::pg::error::Result;
use crate::{Embedder, Prompt};

/// The runs table: one row per scan or queue worker.
pub const RUNS_TABLE: &str = "rembed_runs";

/// What made the vectors of a run, as its `rembed_runs` row records it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunInfo {
    /// The model's name.
    pub model: String,
    /// Its revision or weight digest.
    pub revision: String,
    /// The vectors' dimension, checked against the vector column.
    pub dim: usize,
    /// The precision it ran in, e.g. `F32`.
    pub precision: String,
    /// The prompt text the inputs got.
    pub prompt: String,
}

impl RunInfo {
    /// A run of vectors made elsewhere: `model` and `dim`, the other fields empty.
    pub fn new(model: impl Into<String>, dim: usize) -> Self {
        Self {
            model: model.into(),
            revision: String::new(),
            dim,
            precision: String::new(),
            prompt: String::new(),
        }
    }

    /// A run of `embedder` with `prompt`.
    pub fn of(embedder: &Embedder, prompt: &Prompt) -> Result<Self> {
        let spec = embedder.spec();
        Ok(Self {
            model: spec.name.clone(),
            revision: spec.revision.clone(),
            dim: embedder.dim(),
            precision: format!("{:?}", embedder.precision()),
            prompt: embedder.resolve_prompt(prompt)?,
        })
    }
}

/// Creates the runs table if missing (inside the caller's locked setup transaction).
pub(crate) fn create_table(tx: &mut Transaction<'_>) -> Result<()> {
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
    Ok(())
}

static WORKERS: AtomicUsize = AtomicUsize::new(0);

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// A name unique to this writer: host, process id and a counter.
pub(crate) fn worker_name() -> String {
    format!(
        "{}:{}:{}",
        host(),
        std::process::id(),
        WORKERS.fetch_add(1, Ordering::Relaxed)
    )
}

/// Inserts a run's row; returns its id.
pub(crate) fn start(
    client: &mut Client,
    info: &RunInfo,
    mode: &str,
    target: &str,
    worker: &str,
) -> Result<i64> {
    let dim = info.dim as i32;
    Ok(client
        .query_one(
            &format!(
                "INSERT INTO {RUNS_TABLE} (mode, target, model, revision, dim, precision, \
                 prompt, rembed_version, host, worker) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id"
            ),
            &[
                &mode,
                &target,
                &info.model,
                &info.revision,
                &dim,
                &info.precision,
                &info.prompt,
                &env!("CARGO_PKG_VERSION"),
                &host(),
                &worker,
            ],
        )?
        .get(0))
}

/// Adds a batch's counts to the run's row, inside the batch's transaction.
pub(crate) fn count(
    tx: &mut Transaction<'_>,
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

/// Records the run's end.
pub(crate) fn finish(client: &mut Client, run: i64) -> Result<()> {
    client.execute(
        &format!("UPDATE {RUNS_TABLE} SET finished_at = now() WHERE id = $1"),
        &[&run],
    )?;
    Ok(())
}
