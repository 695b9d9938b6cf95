//! The reader thread: streams the input, sorts every line into its reconciliation bucket and
//! hands the records to embed to the job thread in small chunks, through a bounded channel.
//!
//! On its own thread so that reading and parsing JSON overlap with the model: on a GPU the CPU
//! would otherwise sit idle during each forward pass, and the GPU during each parse. The channel's
//! bound keeps memory flat when the model is slower than the disk.

use std::collections::HashSet;
use std::sync::mpsc::SyncSender;

use super::counts::{Counts, FailedRecord};
use super::error::JobError;
use super::hash::id_hash;
use super::input::{JsonlReader, Line, Record};
use super::shard::Shard;

/// Records per message; the job thread gathers them into model calls.
pub(crate) const CHUNK: usize = 512;
/// Lines after which a message goes out even without records, so progress moves while a
/// resumed run skips through finished records.
const LINES_PER_UPDATE: u64 = 4096;

/// One message of the reader thread.
pub(crate) struct Sorted {
    /// Records to embed, in input order.
    pub records: Vec<Record>,
    /// Malformed lines since the previous message.
    pub malformed: Vec<FailedRecord>,
    /// The reader's buckets so far (cumulative): read, malformed, other shards, duplicates,
    /// unique, empty, resumed.
    pub counts: Counts,
    /// Input lines consumed so far.
    pub lines: u64,
    /// At the end of the input: ids of earlier runs that it no longer has.
    pub stale: Option<u64>,
}

/// Sorts input lines; see the module doc.
pub(crate) struct Sorter {
    reader: JsonlReader,
    shard: Shard,
    /// Ids in the output from earlier runs not met in the input yet.
    done: HashSet<u128>,
    /// Ids of this shard met so far.
    seen: HashSet<u128>,
    counts: Counts,
}

impl Sorter {
    pub(crate) fn new(reader: JsonlReader, shard: Shard, done: HashSet<u128>) -> Self {
        Self {
            reader,
            shard,
            done,
            seen: HashSet::new(),
            counts: Counts::default(),
        }
    }

    /// Reads to the end of the input, sending [`Sorted`] messages; stops early when the
    /// receiver is gone (the job failed) and sends the error when reading fails.
    pub(crate) fn run(mut self, tx: SyncSender<Result<Sorted, JobError>>) {
        let mut message = self.empty_message();
        let mut last_update = 0;
        loop {
            let line = match self.reader.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            self.take(line, &mut message);
            let lines = self.reader.lines();
            if message.records.len() >= CHUNK || lines - last_update >= LINES_PER_UPDATE {
                last_update = lines;
                let full = std::mem::replace(&mut message, self.empty_message());
                if tx.send(Ok(self.stamp(full))).is_err() {
                    return;
                }
            }
        }
        let mut last = self.stamp(message);
        last.stale = Some(self.done.len() as u64);
        let _ = tx.send(Ok(last));
    }

    fn empty_message(&self) -> Sorted {
        Sorted {
            records: Vec::with_capacity(CHUNK),
            malformed: Vec::new(),
            counts: Counts::default(),
            lines: 0,
            stale: None,
        }
    }

    fn stamp(&self, mut message: Sorted) -> Sorted {
        message.counts = self.counts;
        message.lines = self.reader.lines();
        message
    }

    /// Puts one line in its bucket; a record to embed goes into the message.
    fn take(&mut self, line: Line, message: &mut Sorted) {
        let counts = &mut self.counts;
        counts.read += 1;
        let record = match line {
            Line::Record(record) => record,
            Line::Malformed { line, id, reason } => {
                counts.malformed += 1;
                message.malformed.push(FailedRecord {
                    line,
                    id,
                    reason,
                    malformed: true,
                });
                return;
            }
        };
        let hash = id_hash(&record.id);
        if !self.shard.owns(hash) {
            counts.other_shards += 1;
            return;
        }
        if !self.seen.insert(hash) {
            counts.duplicates += 1;
            return;
        }
        counts.unique += 1;
        // An id already in the output counts as embedded whatever its text is now.
        if self.done.remove(&hash) {
            counts.resumed += 1;
        } else if record.text.trim().is_empty() {
            counts.empty += 1;
        } else {
            message.records.push(record);
        }
    }
}
