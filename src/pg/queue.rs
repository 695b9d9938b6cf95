//! A queue table of pending ids shared by any number of workers on any number of machines:
//! claims with `FOR UPDATE SKIP LOCKED` under a lease, vectors written and ids marked done in
//! one transaction, failed ids kept with their error, expired leases of dead workers reclaimed.

use std::collections::HashSet;

use crate::pg::embed_rows::{embed_rows, request};
use crate::pg::error::{connect, PgError, Result};
use crate::pg::runs::{self, RunInfo};
use crate::pg::schema::{quote_ident, quote_name};
use crate::pg::target::{QueueOptions, RunReport, Target};
use crate::pg::writer::{Embedded, Writer};
use crate::{Embedder, Request};

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

/// A queue worker: claims ids under a lease, embeds their texts, writes the vectors (in place
/// or to the target's vector table) and marks the ids done or failed. Its `rembed_runs` row
/// counts what it did.
pub struct Worker<'e> {
    writer: Writer,
    embedder: Option<&'e Embedder>,
    request: Request,
    options: QueueOptions,
    queue: String,
    complete: String,
    fail: String,
}

impl std::fmt::Debug for Worker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("worker", &self.writer.worker)
            .field("run", &self.writer.report.run)
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
        let info = RunInfo::of(embedder, &options.prompt)?;
        let mut worker = Self::open(conninfo, target, &info, options)?;
        worker.embedder = Some(embedder);
        Ok(worker)
    }

    /// A worker that stores vectors made elsewhere ([`Worker::complete`]) and embeds nothing
    /// itself; `info` describes their model.
    pub fn for_vectors(
        conninfo: &str,
        target: &Target,
        info: &RunInfo,
        options: QueueOptions,
    ) -> Result<Self> {
        Self::open(conninfo, target, info, options)
    }

    fn open(
        conninfo: &str,
        target: &Target,
        info: &RunInfo,
        options: QueueOptions,
    ) -> Result<Self> {
        if options.batch_rows == 0 || options.max_attempts < 1 || options.lease.is_zero() {
            return Err(PgError::InvalidOption {
                option: "queue options",
                reason: "batch_rows, max_attempts and lease must be positive".into(),
            });
        }
        let writer = Writer::open_as(conninfo, target, info, "queue")?;
        let q = quote_name(&options.queue);
        let complete = format!(
            "WITH done AS (
                UPDATE {q} SET status = 'done', leased_by = NULL, lease_until = NULL,
                    error = NULL, run = $2, updated_at = now()
                FROM rembed_batch b
                WHERE {q}.id = b.id AND {q}.status = 'processing' AND {q}.leased_by = $1
                RETURNING {q}.id)
             {store}",
            store = Writer::store_sql(
                &writer.t,
                "$2",
                "rembed_batch b JOIN done ON done.id = b.id",
                false
            ),
        );
        let fail = format!(
            "UPDATE {q} SET status = 'failed', error = $3, leased_by = NULL, lease_until = NULL, \
             run = $2, updated_at = now() \
             WHERE id = $4 AND status = 'processing' AND leased_by = $1"
        );
        Ok(Self {
            writer,
            embedder: None,
            request: request(&options.prompt),
            options,
            queue: q,
            complete,
            fail,
        })
    }

    /// This worker's name in the queue's `leased_by`: host, process id and a counter.
    pub fn name(&self) -> &str {
        &self.writer.worker
    }

    /// Queues every row of the target whose text is set and whose vector is missing or was
    /// made from another text (a done id whose text changed goes back to pending; a failed
    /// one stays failed until requeued by hand); returns how many were added or requeued.
    pub fn enqueue_missing(&mut self) -> Result<u64> {
        let t = &self.writer.t;
        let sql = format!(
            "INSERT INTO {q} AS q (id) SELECT {table}.{id}::text FROM {table} WHERE {pending} \
             ON CONFLICT (id) DO UPDATE SET status = 'pending', attempts = 0, error = NULL, \
             updated_at = now() WHERE q.status = 'done'",
            q = self.queue,
            table = t.table,
            id = t.id,
            pending = t.pending(),
        );
        Ok(self.writer.client.execute(&sql, &[])?)
    }

    /// Puts ids whose lease expired (their worker died or stalled) back to pending, or to
    /// failed once they were claimed `max_attempts` times; returns how many.
    pub fn reclaim(&mut self) -> Result<u64> {
        let n = self.writer.client.execute(
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
        self.writer.report.reclaimed += n;
        Ok(n)
    }

    /// Claims up to `limit` pending ids (skipping those other workers hold) under this
    /// worker's lease, committed at once; returns them.
    pub fn claim(&mut self, limit: usize) -> Result<Vec<String>> {
        let rows = self.writer.client.query(
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
                &self.writer.worker,
                &self.options.lease.as_secs_f64(),
                &(limit as i64),
            ],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The texts of the claimed `ids`: (id, text) of those found, and a failure for each id
    /// whose row is gone or has no text.
    #[allow(clippy::type_complexity)]
    pub fn texts(
        &mut self,
        ids: &[String],
    ) -> Result<(Vec<(String, String)>, Vec<(String, String)>)> {
        let t = &self.writer.t;
        let rows: Vec<(String, String)> = self
            .writer
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
        let missing = ids
            .iter()
            .filter(|id| !found.contains(id.as_str()))
            .map(|id| (id.clone(), "no such row, or its text is NULL".to_string()))
            .collect();
        Ok((rows, missing))
    }

    /// Embeds and writes the claimed `ids` ([`Worker::texts`], then [`Worker::complete`]).
    pub fn process(&mut self, ids: &[String]) -> Result<()> {
        let Some(embedder) = self.embedder else {
            return Err(PgError::InvalidOption {
                option: "embedder",
                reason: "a worker made with Worker::for_vectors embeds nothing; call complete"
                    .into(),
            });
        };
        let (rows, mut failures) = self.texts(ids)?;
        let (vectors, embed_failures) = embed_rows(embedder, &self.request, &rows)?;
        failures.extend(embed_failures);
        self.complete(vectors, failures)?;
        Ok(())
    }

    /// Writes the vectors of claimed ids and marks them done, and marks `failures` failed
    /// with their error, in one transaction with the run's counts; returns how many vectors
    /// were written. Ids whose lease this worker lost meanwhile are left to their new holder.
    pub fn complete(
        &mut self,
        done: Vec<Embedded>,
        failures: Vec<(String, String)>,
    ) -> Result<u64> {
        let run = self.writer.report.run;
        let worker = self.writer.worker.clone();
        let mut tx = self.writer.client.transaction()?;
        self.writer.batch.copy(&mut tx, done)?;
        let written = tx.execute(&self.complete, &[&worker, &run])?;
        let mut failed = 0;
        for (id, reason) in &failures {
            failed += tx.execute(&self.fail, &[&worker, &run, reason, id])? as usize;
        }
        runs::count(&mut tx, run, written, failed, None)?;
        tx.commit()?;
        self.writer.record(written, failures);
        Ok(written)
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
        self.writer.report()
    }

    /// Ends the run (its `finished_at`) and returns its report.
    pub fn finish(self) -> Result<RunReport> {
        self.writer.finish()
    }
}
