//! The reader thread: streams the input, sorts every line into its reconciliation bucket and
//! hands the records to embed to the job thread in small chunks, through a bounded channel.
//!
//! On its own thread so that reading and parsing JSON overlap with the model: on a GPU the CPU
//! would otherwise sit idle during each forward pass, and the GPU during each parse. The channel's
//! bound keeps memory flat when the model is slower than the disk.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::SyncSender;

use super::counts::Counts;
use super::error::Error;
use super::hash::id_hash;
use super::input::{JsonlReader, Line, Record};
use super::shard::Shard;
use super::skipped::{Skipped, Why};

/// Records per message; the job thread gathers them into model calls.
pub(crate) const CHUNK: usize = 512;
/// Lines after which a message goes out even without records, so progress moves while a
/// resumed run skips through finished records.
const LINES_PER_UPDATE: u64 = 4096;
/// The bit of a [`Sorter::seen`] value that marks an id written as a JSON number.
const NUMBER: u64 = 1 << 63;

/// One message of the reader thread.
pub(crate) struct Sorted {
    /// Records to embed, in input order.
    pub records: Vec<Record>,
    /// Records of this shard that will get no vector (malformed, empty, duplicate with another
    /// text, id conflict) since the previous message.
    pub skipped: Vec<Skipped>,
    /// The reader's buckets so far (cumulative): read, malformed, other shards, duplicates,
    /// unique, empty, resumed.
    pub counts: Counts,
    /// Bytes of input consumed so far.
    pub bytes: u64,
    /// At the end of the input: ids of earlier runs that it no longer has.
    pub stale: Option<u64>,
}

/// Sorts input lines; see the module doc.
pub(crate) struct Sorter {
    reader: JsonlReader,
    /// Lines already read (the sample that decided the columns), sorted before the rest.
    first: std::vec::IntoIter<Line>,
    shard: Shard,
    /// Ids in the output from earlier runs not met in the input yet.
    done: HashSet<u128>,
    /// Ids of this shard met so far, with a 63-bit hash of their first text and the [`NUMBER`]
    /// bit: enough to tell a repeat from a conflicting record in 24 bytes per id.
    seen: HashMap<u128, u64>,
    counts: Counts,
    bytes: u64,
}

impl Sorter {
    pub(crate) fn new(
        reader: JsonlReader,
        first: Vec<Line>,
        shard: Shard,
        done: HashSet<u128>,
    ) -> Self {
        Self {
            reader,
            first: first.into_iter(),
            shard,
            done,
            seen: HashMap::new(),
            counts: Counts::default(),
            bytes: 0,
        }
    }

    /// Reads to the end of the input, sending [`Sorted`] messages; stops early when the
    /// receiver is gone (the job failed or was stopped) and sends the error when reading fails.
    pub(crate) fn run(mut self, tx: SyncSender<Result<Sorted, Error>>) {
        let mut message = Self::empty_message();
        let mut lines_since_update = 0;
        loop {
            let line = match self.first.next() {
                Some(line) => line,
                None => match self.reader.next_line() {
                    Ok(Some(line)) => line,
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                },
            };
            self.bytes = line.position().1;
            self.take(line, &mut message);
            lines_since_update += 1;
            if message.records.len() >= CHUNK || lines_since_update >= LINES_PER_UPDATE {
                lines_since_update = 0;
                let full = std::mem::replace(&mut message, Self::empty_message());
                if tx.send(Ok(self.stamp(full))).is_err() {
                    return;
                }
            }
        }
        let mut last = self.stamp(message);
        last.stale = Some(self.done.len() as u64);
        let _ = tx.send(Ok(last));
    }

    fn empty_message() -> Sorted {
        Sorted {
            records: Vec::with_capacity(CHUNK),
            skipped: Vec::new(),
            counts: Counts::default(),
            bytes: 0,
            stale: None,
        }
    }

    fn stamp(&self, mut message: Sorted) -> Sorted {
        message.counts = self.counts;
        message.bytes = self.bytes;
        message
    }

    /// Puts one line in its bucket; a record to embed goes into the message.
    fn take(&mut self, line: Line, message: &mut Sorted) {
        let counts = &mut self.counts;
        counts.read += 1;
        let record = match line {
            Line::Record(record) => record,
            Line::Malformed {
                line, id, reason, ..
            } => {
                counts.malformed += 1;
                message.skipped.push(Skipped {
                    line,
                    id,
                    why: Why::Malformed,
                    reason,
                });
                return;
            }
        };
        let hash = id_hash(record.id.as_str());
        if !self.shard.owns(hash) {
            counts.other_shards += 1;
            return;
        }
        let text = (crate::hash::fnv1a_128(record.text.as_bytes()) as u64 & !NUMBER)
            | if record.id.is_number() { NUMBER } else { 0 };
        if let Some(&first) = self.seen.get(&hash) {
            counts.duplicates += 1;
            let skip = |why, reason: String| Skipped {
                line: record.line,
                id: Some(record.id.clone()),
                why,
                reason,
            };
            if (first ^ text) & NUMBER != 0 {
                counts.id_conflicts += 1;
                let (this, other) = if record.id.is_number() {
                    ("a number", "a string")
                } else {
                    ("a string", "a number")
                };
                message.skipped.push(skip(
                    Why::IdConflict,
                    format!(
                        "id {} is {this}, but an earlier record has the same id as {other}; the \
                         output's id column is text and cannot tell them apart: give the ids \
                         one JSON type",
                        record.id
                    ),
                ));
            } else if first != text {
                counts.duplicates_other_text += 1;
                message.skipped.push(skip(
                    Why::DuplicateOtherText,
                    "an earlier record has this id with another text; the first one is kept".into(),
                ));
            }
            return;
        }
        self.seen.insert(hash, text);
        counts.unique += 1;
        // An id already in the output counts as embedded whatever its text is now.
        if self.done.remove(&hash) {
            counts.resumed += 1;
        } else if record.text.trim().is_empty() {
            counts.empty += 1;
            let reason = if record.text_missing {
                "no text field"
            } else {
                "empty text"
            };
            message.skipped.push(Skipped {
                line: record.line,
                id: Some(record.id),
                why: Why::Empty,
                reason: reason.into(),
            });
        } else {
            message.records.push(record);
        }
    }
}
