//! Writes a batch of vectors in one transaction: a binary `COPY` into a temporary table, then
//! one `UPDATE ... FROM` (in place) or `INSERT ... ON CONFLICT DO UPDATE` (a separate table),
//! with the run's counts in the same transaction, so a crash leaves no row half written and
//! none counted twice.

use pgvector::{HalfVector, Vector};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, Transaction};
use sha2::{Digest, Sha256};

use crate::pg::error::{connect, PgError, Result};
use crate::pg::runs::{self, RunInfo};
use crate::pg::schema::{self, Checked, Model, VectorKind};
use crate::pg::target::{RunReport, Target};

/// One row's vector and the hash of the text it was made from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Embedded {
    /// The row's id, as text (cast to the id column's type on the server).
    pub id: String,
    /// SHA-256 of the text's UTF-8 bytes, as the server's
    /// `sha256(convert_to(text, 'UTF8'))` computes it.
    pub text_hash: Vec<u8>,
    /// The vector.
    pub vector: Vec<f32>,
}

impl Embedded {
    /// The vector of `text` for the row `id`.
    pub fn new(id: impl Into<String>, text: &str, vector: Vec<f32>) -> Self {
        Self {
            id: id.into(),
            text_hash: Sha256::digest(text.as_bytes()).to_vec(),
            vector,
        }
    }
}

/// The writer of one run: the checked target, the run's `rembed_runs` row and the batch
/// table. [`crate::pg::embed_table`] and the queue [`crate::pg::Worker`] write through it;
/// on its own it stores vectors made elsewhere.
pub struct Writer {
    pub(crate) client: Client,
    pub(crate) t: Checked,
    pub(crate) report: RunReport,
    pub(crate) worker: String,
    pub(crate) batch: BatchTable,
    store: String,
}

/// The session's temporary table each batch is copied into, and how a row goes there.
pub(crate) struct BatchTable {
    types: Vec<Type>,
    kind: VectorKind,
    dim: usize,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("worker", &self.worker)
            .field("run", &self.report.run)
            .finish()
    }
}

impl Writer {
    /// Connects, checks `target` against `info` (its dimension) and starts a run.
    pub fn open(conninfo: &str, target: &Target, info: &RunInfo) -> Result<Self> {
        let mode = if target.vector_table.is_some() {
            "separate"
        } else {
            "in-place"
        };
        Self::open_as(conninfo, target, info, mode)
    }

    pub(crate) fn open_as(
        conninfo: &str,
        target: &Target,
        info: &RunInfo,
        mode: &str,
    ) -> Result<Self> {
        let mut client = connect(conninfo)?;
        let model = Model {
            dim: info.dim,
            name: &info.model,
        };
        let t = schema::check(&mut client, target, &model)?;
        let worker = runs::worker_name();
        let run = runs::start(&mut client, info, mode, &t.label, &worker)?;
        // Rows vanish at every commit, and with a rolled-back transaction.
        client.batch_execute(&format!(
            "CREATE TEMP TABLE rembed_batch (id text PRIMARY KEY, v {}, h bytea) \
             ON COMMIT DELETE ROWS",
            t.kind.sql_type()
        ))?;
        let copy_types = client
            .prepare("SELECT id, v, h FROM rembed_batch")?
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        let store = Self::store_sql(&t, "$1", "rembed_batch b", true);
        let kind = t.kind;
        Ok(Self {
            client,
            t,
            report: RunReport {
                run,
                ..RunReport::default()
            },
            worker,
            batch: BatchTable {
                types: copy_types,
                kind,
                dim: info.dim,
            },
            store,
        })
    }

    /// The statement that moves batch rows (`b`, from the FROM items `from`) into the
    /// target, with the run id in parameter `run`. `guarded`: skip rows another writer gave
    /// the same text's vector meanwhile (two scans at once).
    pub(crate) fn store_sql(t: &Checked, run: &str, from: &str, guarded: bool) -> String {
        let Checked {
            out,
            id,
            id_type,
            vector,
            run: run_col,
            hash,
            ..
        } = t;
        if t.separate {
            let guard = if guarded {
                format!(" WHERE o.{vector} IS NULL OR o.{hash} IS DISTINCT FROM excluded.{hash}")
            } else {
                String::new()
            };
            format!(
                "INSERT INTO {out} AS o ({id}, {vector}, {run_col}, {hash}) \
                 SELECT CAST(b.id AS {id_type}), b.v, {run}, b.h FROM {from} \
                 ON CONFLICT ({id}) DO UPDATE SET {vector} = excluded.{vector}, \
                 {run_col} = excluded.{run_col}, {hash} = excluded.{hash}{guard}"
            )
        } else {
            let guard = if guarded {
                format!(" AND ({out}.{vector} IS NULL OR {out}.{hash} IS DISTINCT FROM b.h)")
            } else {
                String::new()
            };
            format!(
                "UPDATE {out} SET {vector} = b.v, {run_col} = {run}, {hash} = b.h \
                 FROM {from} WHERE {out}.{id} = CAST(b.id AS {id_type}){guard}"
            )
        }
    }

    /// Writes `rows` in one transaction with the run's counts; returns how many rows were
    /// written (a row another writer already gave the same text's vector is skipped).
    pub fn write(&mut self, rows: Vec<Embedded>) -> Result<u64> {
        self.write_batch(rows, Vec::new(), None)
    }

    /// [`Writer::write`], counting `failures` and the last id read in the run's row too.
    pub(crate) fn write_batch(
        &mut self,
        rows: Vec<Embedded>,
        failures: Vec<(String, String)>,
        last_id: Option<&str>,
    ) -> Result<u64> {
        let run = self.report.run;
        let mut tx = self.client.transaction()?;
        self.batch.copy(&mut tx, rows)?;
        let written = tx.execute(&self.store, &[&run])?;
        runs::count(&mut tx, run, written, failures.len(), last_id)?;
        tx.commit()?;
        self.record(written, failures);
        Ok(written)
    }

    /// Adds a committed batch to the report.
    pub(crate) fn record(&mut self, written: u64, failures: Vec<(String, String)>) {
        self.report.written += written;
        self.report.batches += 1;
        for (id, reason) in &failures {
            tracing::warn!(id, reason, "row not embedded");
        }
        self.report.failed.extend(failures);
    }

    /// What this run did so far.
    pub fn report(&self) -> &RunReport {
        &self.report
    }

    /// Ends the run (its `finished_at`) and returns its report.
    pub fn finish(mut self) -> Result<RunReport> {
        runs::finish(&mut self.client, self.report.run)?;
        Ok(self.report)
    }
}

impl BatchTable {
    /// Binary COPY of `rows` into the batch table, inside `tx`.
    pub(crate) fn copy(&self, tx: &mut Transaction<'_>, rows: Vec<Embedded>) -> Result<()> {
        let BatchTable { types, kind, dim } = self;
        let dim = *dim;
        if let Some(row) = rows.iter().find(|r| r.vector.len() != dim) {
            return Err(PgError::InvalidOption {
                option: "vector",
                reason: format!(
                    "row {} has {} dimensions, the run {dim}",
                    row.id,
                    row.vector.len()
                ),
            });
        }
        let sink = tx.copy_in("COPY rembed_batch (id, v, h) FROM STDIN (FORMAT binary)")?;
        let mut writer = BinaryCopyInWriter::new(sink, types);
        for Embedded {
            id,
            text_hash,
            vector,
        } in rows
        {
            match *kind {
                VectorKind::Vector => writer.write(&[&id, &Vector::from(vector), &text_hash])?,
                VectorKind::HalfVec => {
                    writer.write(&[&id, &HalfVector::from_f32_slice(&vector), &text_hash])?
                }
                VectorKind::Real => writer.write(&[&id, &vector, &text_hash])?,
            }
        }
        writer.finish()?;
        Ok(())
    }
}
