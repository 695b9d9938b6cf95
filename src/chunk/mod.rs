//! Turning chat logs and long documents into texts worth embedding.
//!
//! Both problems come from the same place: a model embeds one text of bounded length. A chat
//! message is mostly too short to mean anything ("ok", "haha", an emoji), so messages are grouped
//! into conversation chunks; a long document is too long, so it is split into chunks that each fit
//! the model's max length instead of being silently truncated. Nothing here loads a model: the
//! only model-related input is an optional tokenizer, used to count tokens.
//!
//! How [`ChatChunker::chunk`] turns messages into chunks (every number is configurable):
//! 1. Messages are ordered by (thread, timestamp, original position), so they may come in any
//!    order and from several files per thread.
//! 2. System and empty messages are dropped ([`Filter`]: the export's field flags first, then
//!    the text patterns in [`DEFAULT_PATTERNS`]).
//! 3. A thread is cut into sessions wherever two messages are more than 2 hours apart.
//! 4. Consecutive messages from the same sender at most 120 s apart are coalesced into one turn of
//!    at most 500 characters.
//! 5. Turns are grouped into sliding windows of 30 with 10 of overlap; a window ends early rather
//!    than exceed 6000 characters, and a turn longer than that is split (at whitespace where it
//!    can) rather than dropped.
//! 6. Each window becomes a [`Chunk`] whose text has one line per turn, `[Sender Name]: text`,
//!    and whose id is a hash of its content, so the same input gives the same ids on every run.
//!
//! Long documents go through [`TextSplitter`], which prefers to break at markdown headings, then
//! blank lines, line ends, sentence ends and finally spaces; [`LongText::Chunks`](crate::LongText::Chunks)
//! embeds a text as its chunks.
//!
//! ```
//! use rembed::chunk::{ChatChunker, Message};
//!
//! # fn main() -> rembed::Result<()> {
//! let say = |id: &str, who: &str, at_s: i64, text: &str| Message {
//!     id: id.into(),
//!     thread_id: "t1".into(),
//!     thread_name: "Trip".into(),
//!     sender_id: who.into(),
//!     sender_name: who.into(),
//!     timestamp_ms: at_s * 1000,
//!     text: text.into(),
//!     ..Message::default()
//! };
//! let messages = [
//!     say("1", "Ann", 0, "are we still on for Saturday?"),
//!     say("2", "Ann", 30, "the ferry leaves at 9"),
//!     say("3", "Bob", 60, "You sent a photo."),
//!     say("4", "Bob", 90, "yes! I'll bring the tent"),
//! ];
//! let out = ChatChunker::default().chunk(&messages)?;
//! assert_eq!(out.chunks.len(), 1);
//! assert_eq!(
//!     out.chunks[0].text,
//!     "[Ann]: are we still on for Saturday?\nthe ferry leaves at 9\n[Bob]: yes! I'll bring the tent"
//! );
//! assert_eq!(out.stats.dropped_total(), 1);
//! # Ok(())
//! # }
//! ```

mod breaks;
mod chat;
mod coalesce;
mod count;
mod export;
mod filter;
mod hash;
mod input;
mod jsonl;
mod message;
mod splitter;
mod window;

pub use chat::{ChatChunker, Chunked, Stats};
pub use count::{CountTokens, TokenCounter};
pub use export::{read_messenger, repair_mojibake};
pub use filter::{is_low_signal, DropReason, Filter, DEFAULT_PATTERNS};
pub use input::read_messages;
pub use jsonl::{parse_jsonl, read_jsonl, write_chunks_jsonl};
pub use message::{Flags, Message};
pub use splitter::{TextChunk, TextSplitter};
pub use window::Chunk;
