//! [`ChatChunker`]: the chat pipeline from messages to chunks, and its counts.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rayon::prelude::*;

use super::coalesce::{coalesce, sessions};
use super::filter::{DropReason, Filter};
use super::message::Message;
use super::window::{self, Chunk, Windowing};
use crate::error::{Error, Result};

/// Smallest `max_chars` accepted: room for a shortened sender label and some text on every line.
const MIN_MAX_CHARS: usize = 16;

/// Groups chat messages into conversation chunks (see the [module docs](super) for the steps).
///
/// Every setter states its default. Settings are checked when [`ChatChunker::chunk`] runs.
#[derive(Debug, Clone)]
pub struct ChatChunker {
    filter: Filter,
    coalesce_gap: Duration,
    coalesce_chars: usize,
    session_gap: Duration,
    window: usize,
    overlap: usize,
    max_chars: usize,
}

impl Default for ChatChunker {
    fn default() -> Self {
        Self {
            filter: Filter::default(),
            coalesce_gap: Duration::from_secs(120),
            coalesce_chars: 500,
            session_gap: Duration::from_secs(2 * 3600),
            window: 30,
            overlap: 10,
            max_chars: 6000,
        }
    }
}

/// What [`ChatChunker::chunk`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Chunked {
    /// Ordered by thread id, then session, then position in the session.
    pub chunks: Vec<Chunk>,
    /// Counts of each step, for reports.
    pub stats: Stats,
}

/// How many items each step of the pipeline saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages given to the chunker.
    pub messages: usize,
    /// Messages dropped by the filter, by reason (reasons with no drop are absent).
    pub dropped: BTreeMap<DropReason, usize>,
    /// Turns left after coalescing.
    pub turns: usize,
    /// Sessions over all threads.
    pub sessions: usize,
    /// Chunks produced.
    pub chunks: usize,
}

impl Stats {
    /// Messages dropped for any reason.
    pub fn dropped_total(&self) -> usize {
        self.dropped.values().sum()
    }

    /// Messages per chunk (`messages / chunks`), the factor by which chunking cuts the number of
    /// vectors to store; 0 when there are no chunks.
    pub fn compression_ratio(&self) -> f64 {
        if self.chunks == 0 {
            0.0
        } else {
            self.messages as f64 / self.chunks as f64
        }
    }

    fn add(&mut self, other: Stats) {
        self.messages += other.messages;
        for (reason, n) in other.dropped {
            *self.dropped.entry(reason).or_insert(0) += n;
        }
        self.turns += other.turns;
        self.sessions += other.sessions;
        self.chunks += other.chunks;
    }
}

impl ChatChunker {
    /// Which messages are dropped. Default: [`Filter::default`].
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Longest pause between two messages of one sender that still merges them. Default: 120 s.
    pub fn with_coalesce_gap(mut self, gap: Duration) -> Self {
        self.coalesce_gap = gap;
        self
    }

    /// Most characters in a merged turn; 0 turns coalescing off. Default: 500.
    pub fn with_coalesce_chars(mut self, chars: usize) -> Self {
        self.coalesce_chars = chars;
        self
    }

    /// A pause longer than this starts a new session; no chunk spans two sessions, and no turn
    /// either, whatever the coalescing gap. Default: 2 hours.
    pub fn with_session_gap(mut self, gap: Duration) -> Self {
        self.session_gap = gap;
        self
    }

    /// Most turns per chunk (at least 1). Default: 30.
    pub fn with_window(mut self, turns: usize) -> Self {
        self.window = turns;
        self
    }

    /// Turns shared by consecutive chunks of a session (less than the window). More overlap
    /// keeps context across chunk borders at the cost of more chunks to embed. Default: 10.
    pub fn with_overlap(mut self, turns: usize) -> Self {
        self.overlap = turns;
        self
    }

    /// Most characters per chunk text (at least 16); keep it within what the embedding model
    /// reads (about 4 characters per token in English). Default: 6000.
    pub fn with_max_chars(mut self, chars: usize) -> Self {
        self.max_chars = chars;
        self
    }

    /// Runs the pipeline. The output depends only on the messages and settings: the same input
    /// gives the same chunks and ids, whatever the order of the messages.
    ///
    /// Fails with [`Error::InvalidOption`] on a zero window, an overlap not below the window, or
    /// `max_chars` below 16.
    pub fn chunk(&self, messages: &[Message]) -> Result<Chunked> {
        self.validate()?;
        let order = time_order(messages);
        let threads: Vec<&[usize]> = order
            .chunk_by(|&a, &b| messages[a].thread_id == messages[b].thread_id)
            .collect();
        let outputs: Vec<(Vec<Chunk>, Stats)> = threads
            .par_iter()
            .map(|thread| self.thread(messages, thread))
            .collect();
        let mut chunks = Vec::with_capacity(outputs.iter().map(|o| o.0.len()).sum());
        let mut stats = Stats::default();
        for (thread_chunks, thread_stats) in outputs {
            chunks.extend(thread_chunks);
            stats.add(thread_stats);
        }
        Ok(Chunked { chunks, stats })
    }

    fn validate(&self) -> Result<()> {
        let invalid = |option, reason: &str| {
            Err(Error::InvalidOption {
                option,
                reason: reason.to_string(),
            })
        };
        if self.window == 0 {
            return invalid("window", "must be at least 1");
        }
        if self.overlap >= self.window {
            return invalid("overlap", "must be less than the window");
        }
        if self.max_chars < MIN_MAX_CHARS {
            return invalid("max_chars", "must be at least 16");
        }
        Ok(())
    }

    /// The chunks of one thread, whose messages `order` lists in time order.
    fn thread(&self, messages: &[Message], order: &[usize]) -> (Vec<Chunk>, Stats) {
        let mut stats = Stats {
            messages: order.len(),
            ..Stats::default()
        };
        let mut kept: Vec<&Message> = Vec::with_capacity(order.len());
        for &i in order {
            match self.filter.reason(&messages[i]) {
                Some(reason) => *stats.dropped.entry(reason).or_insert(0) += 1,
                None => kept.push(&messages[i]),
            }
        }
        let thread_id = messages[order[0]].thread_id.as_str();
        let thread_name = order
            .iter()
            .rev()
            .map(|&i| messages[i].thread_name.as_str())
            .find(|name| !name.is_empty())
            .unwrap_or(thread_id);
        let sizes = Windowing {
            window: self.window,
            overlap: self.overlap,
            max_chars: self.max_chars,
        };
        let mut chunks = Vec::new();
        let session_gap = millis(self.session_gap);
        for (session_idx, session) in sessions(&kept, session_gap).enumerate() {
            let turns = coalesce(
                session,
                millis(self.coalesce_gap).min(session_gap),
                self.coalesce_chars,
            );
            let lines = window::lines(&turns, self.max_chars);
            let ranges = window::windows(&lines, sizes);
            stats.sessions += 1;
            stats.turns += turns.len();
            chunks.extend(ranges.into_iter().enumerate().map(|(chunk_idx, range)| {
                window::chunk(
                    &turns,
                    &lines,
                    range,
                    (thread_id, thread_name),
                    session_idx,
                    chunk_idx,
                )
            }));
        }
        stats.chunks = chunks.len();
        (chunks, stats)
    }
}

/// Message indices ordered by (thread id, timestamp, index).
///
/// Sorting compact keys, with each thread id replaced by its rank among the distinct ids, is
/// several times faster than comparing the messages themselves: a comparison then touches 16
/// bytes in one array instead of two scattered strings.
fn time_order(messages: &[Message]) -> Vec<usize> {
    // Messages of one thread mostly come in runs, so remembering the last id saves most hashing.
    let mut ranks: HashMap<&str, u32> = HashMap::new();
    let mut last: Option<&str> = None;
    for message in messages {
        if last != Some(message.thread_id.as_str()) {
            let next = ranks.len() as u32;
            ranks.entry(&message.thread_id).or_insert(next);
            last = Some(&message.thread_id);
        }
    }
    let mut ids: Vec<&str> = ranks.keys().copied().collect();
    ids.sort_unstable();
    for (rank, id) in ids.into_iter().enumerate() {
        ranks.insert(id, rank as u32);
    }
    let mut last: Option<(&str, u32)> = None;
    let mut keys: Vec<(u32, i64, u32)> = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let rank = match last {
            Some((id, rank)) if id == message.thread_id => rank,
            _ => ranks[message.thread_id.as_str()],
        };
        last = Some((&message.thread_id, rank));
        // Index as u32: four billion messages would not fit in memory as `Message`s anyway.
        keys.push((rank, message.timestamp_ms, i as u32));
    }
    keys.sort_unstable();
    keys.into_iter().map(|(_, _, i)| i as usize).collect()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
