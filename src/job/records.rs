//! What happens to each record of a run: sorted into its reconciliation bucket, batched,
//! embedded, written to the open part file; and the checkpoints that make parts durable.

use std::sync::mpsc::Receiver;
use std::time::SystemTime;

use arrow_array::StringArray;
use arrow_schema::SchemaRef;

use super::config::Config;
use super::counts::{Counts, FailedRecord, Report};
use super::error::Error;
use super::input::Record;
use super::manifest::{rfc3339, Manifest};
use super::model::{embed, NON_FINITE};
use super::output::{output_schema, PartWriter};
use super::progress::Progress;
use super::schema::{MetaBuilders, MetaColumn};
use super::skipped::{SkipList, Skipped, Why};
use super::sorter::Sorted;
use super::stop::{Signals, StopSignal};
use crate::Embedder;

/// Failures listed in the manifest; beyond this only counted, to keep the manifest small.
const MAX_LISTED_FAILURES: usize = 10_000;

/// The state of a run between its setup and its report: the job thread's side.
pub(crate) struct Job<'a> {
    embedder: &'a Embedder,
    config: &'a Config,
    schema: SchemaRef,
    builders: MetaBuilders,
    /// The reader thread's latest counts.
    sorted: Counts,
    /// Input bytes the reader has consumed.
    read_to: u64,
    /// Input bytes behind the last finished record.
    done_to: u64,
    /// Ids of earlier runs the input no longer has, once the reader reached its end.
    stale: Option<u64>,
    pending: Vec<Record>,
    part: Option<PartWriter>,
    next_seq: u64,
    failures: Vec<FailedRecord>,
    failures_omitted: u64,
    /// Records this run embedded, and failed on.
    embedded_now: u64,
    failed: u64,
    /// Of `failed`, records whose vector was not finite.
    non_finite: u64,
    tokens_now: u64,
    manifest: Manifest,
    progress: Progress,
    skipped: SkipList,
    signals: &'a Signals,
}

impl<'a> Job<'a> {
    /// A run that writes part files from `next_seq` on.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        embedder: &'a Embedder,
        config: &'a Config,
        columns: &[MetaColumn],
        next_seq: u64,
        manifest: Manifest,
        progress: Progress,
        skipped: SkipList,
        signals: &'a Signals,
    ) -> Self {
        Self {
            embedder,
            config,
            schema: output_schema(columns, manifest.model.dim),
            builders: MetaBuilders::new(columns),
            sorted: Counts::default(),
            read_to: 0,
            done_to: 0,
            stale: None,
            pending: Vec::new(),
            part: None,
            next_seq,
            failures: Vec::new(),
            failures_omitted: 0,
            embedded_now: 0,
            failed: 0,
            non_finite: 0,
            tokens_now: 0,
            manifest,
            progress,
            skipped,
            signals,
        }
    }

    /// Embeds and writes what the reader thread sends, to the end of the input or until a
    /// signal stops the run (returned; the batch in flight is finished first).
    pub(crate) fn consume(
        &mut self,
        rx: Receiver<Result<Sorted, Error>>,
    ) -> Result<Option<StopSignal>, Error> {
        for message in rx {
            let message = message?;
            self.sorted = message.counts;
            self.read_to = message.bytes;
            for skipped in message.skipped {
                self.skip(skipped)?;
            }
            self.pending.extend(message.records);
            let last = message.stale.is_some();
            self.stale = message.stale;
            if self.pending.is_empty() {
                self.done_to = self.read_to;
            }
            self.show();
            while !self.pending.is_empty() && (last || self.pending.len() >= self.batch_limit()) {
                if let Some(signal) = self.signals.caught() {
                    return Ok(Some(signal));
                }
                self.embed_batch()?;
                self.show();
            }
            if let Some(signal) = self.signals.caught() {
                return Ok(Some(signal));
            }
            if last {
                return Ok(None);
            }
        }
        // The reader stops early only on an error it sent, or by panicking (which the scope
        // that runs it re-raises).
        Ok(None)
    }

    fn show(&self) {
        self.progress.update(
            self.done_to,
            self.embedded_now,
            self.failed,
            self.tokens_now,
        );
    }

    /// Lists a record without a vector; malformed ones are also failures of the manifest.
    fn skip(&mut self, skipped: Skipped) -> Result<(), Error> {
        self.skipped.push(&skipped)?;
        if matches!(skipped.why, Why::Malformed | Why::Failed) {
            self.fail(FailedRecord {
                line: skipped.line,
                id: skipped.id,
                reason: skipped.reason,
                malformed: skipped.why == Why::Malformed,
            });
        }
        Ok(())
    }

    fn fail(&mut self, failure: FailedRecord) {
        if self.failures.len() < MAX_LISTED_FAILURES {
            self.failures.push(failure);
        } else {
            self.failures_omitted += 1;
        }
    }

    /// Records per model call: a batch never straddles two part files, so that each part's
    /// token and truncation counts are its own.
    fn batch_limit(&self) -> usize {
        let rows = self.part.as_ref().map_or(0, |p| p.rows() as usize);
        self.config
            .batch_records
            .min(self.config.checkpoint_every.saturating_sub(rows))
            .max(1)
    }

    /// Embeds one batch of pending records, writes it, and checkpoints when the part is full.
    fn embed_batch(&mut self) -> Result<(), Error> {
        let take = self.batch_limit().min(self.pending.len());
        let records: Vec<Record> = self.pending.drain(..take).collect();
        let end = records.last().map_or(self.done_to, |r| r.end);
        self.embed_and_write(records)?;
        self.done_to = if self.pending.is_empty() {
            self.read_to
        } else {
            end
        };
        let full = self.part.as_ref().map_or(0, |p| p.rows() as usize);
        if full >= self.config.checkpoint_every {
            self.checkpoint(false)?;
        }
        Ok(())
    }

    fn embed_and_write(&mut self, records: Vec<Record>) -> Result<(), Error> {
        let texts: Vec<&str> = records.iter().map(|r| r.text.as_str()).collect();
        let (embedded, tokens, truncated) = embed(self.embedder, &texts);
        let mut vectors = Vec::with_capacity(records.len() * self.manifest.model.dim);
        let mut ids = Vec::with_capacity(records.len());
        for (record, result) in records.into_iter().zip(embedded) {
            match result {
                Ok(vector) => {
                    vectors.extend_from_slice(&vector);
                    ids.push(record.id.as_str().to_string());
                    self.builders.push(record.fields);
                }
                Err(reason) => {
                    self.failed += 1;
                    self.non_finite += u64::from(reason.starts_with(NON_FINITE));
                    self.skip(Skipped {
                        line: record.line,
                        id: Some(record.id),
                        why: Why::Failed,
                        reason,
                    })?;
                }
            }
        }
        let rows = ids.len() as u64;
        if rows > 0 {
            let part = match &mut self.part {
                Some(part) => part,
                None => self.part.insert(PartWriter::create(
                    &self.config.output,
                    self.config.shard,
                    self.next_seq,
                    self.schema.clone(),
                    self.config.checkpoint_every,
                )?),
            };
            let metadata = self.builders.finish();
            part.write(StringArray::from(ids), metadata, vectors, tokens, truncated)?;
        }
        self.embedded_now += rows;
        self.tokens_now += tokens;
        Ok(())
    }

    /// Makes the open part durable, then the manifest; `last` marks the run finished.
    fn checkpoint(&mut self, last: bool) -> Result<(), Error> {
        if let Some(part) = self.part.take() {
            self.manifest.parts.push(part.commit()?);
            self.next_seq += 1;
        }
        let now = rfc3339(SystemTime::now());
        let mut counts = self.sorted;
        counts.embedded = counts.resumed + self.embedded_now;
        counts.failed = self.failed;
        counts.non_finite = self.non_finite;
        // Read by the reader thread, not yet embedded (pending here or in the channel).
        counts.in_flight =
            (counts.unique - counts.empty).saturating_sub(counts.embedded + counts.failed);
        let parts = &self.manifest.parts;
        counts.output_rows = parts.iter().map(|p| p.rows).sum();
        counts.tokens = parts.iter().map(|p| p.tokens).sum();
        counts.truncated = parts.iter().map(|p| p.truncated).sum();
        counts.stale = self.stale.unwrap_or(0);
        let manifest = &mut self.manifest;
        manifest.counts = counts;
        manifest.failures.clone_from(&self.failures);
        manifest.failures_omitted = self.failures_omitted;
        manifest.cost = self.progress.cost();
        manifest.updated_at.clone_from(&now);
        if let Some(run) = manifest.runs.last_mut() {
            run.embedded = self.embedded_now;
            run.seconds = self.progress.seconds();
            if last {
                run.ended_at = Some(now.clone());
            }
        }
        if last {
            manifest.ended_at = Some(now);
            manifest.complete = counts.imbalances().is_empty();
        }
        manifest.write(&self.config.output)
    }

    /// Writes the last part, the list of records without a vector and the final manifest, and
    /// reports. After a signal the run is checkpointed but not finished.
    pub(crate) fn finish(
        mut self,
        duplicate_rows: u64,
        stopped_by: Option<StopSignal>,
    ) -> Result<Report, Error> {
        if duplicate_rows > 0 {
            tracing::warn!(target: "rembed::job", duplicate_rows,
                "the output already held duplicate ids before this run; the counts will not add up");
        }
        self.manifest.not_embedded = Some(self.skipped.commit()?);
        if let Some(run) = self.manifest.runs.last_mut() {
            run.stopped_by = stopped_by;
        }
        // A stopped run checkpoints like a full part would, and records when it ended.
        self.checkpoint(stopped_by.is_none())?;
        let output = &self.config.output;
        if let Some(signal) = stopped_by {
            let now = rfc3339(SystemTime::now());
            if let Some(run) = self.manifest.runs.last_mut() {
                run.ended_at = Some(now);
            }
            self.manifest.write(output)?;
            let c = &self.manifest.counts;
            tracing::warn!(target: "rembed::job",
                "stopped by {signal} after the batch in flight: {} records embedded in this run, \
                 {} rows saved in {} part file(s) of {}; run the same command again to resume",
                self.embedded_now, c.output_rows, self.manifest.parts.len(), output.display());
        }
        let report = Report {
            counts: self.manifest.counts,
            failures: self.failures,
            failures_omitted: self.failures_omitted,
            input_changed: self.manifest.input_changed.clone(),
            manifest: output.join(Manifest::file_name(self.config.shard)),
            seconds: self.progress.seconds(),
            cost: self.manifest.cost,
            not_embedded: self
                .manifest
                .not_embedded
                .as_ref()
                .map(|name| output.join(name)),
            stopped_by,
        };
        self.progress.finish();
        Ok(report)
    }
}
