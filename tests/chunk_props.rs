//! Property tests of the chat chunker: coverage, limits, time order, overlap, stable ids, and no
//! panic on arbitrary Unicode.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;
use rembed::chunk::{ChatChunker, Chunk, Flags, Message};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z]{1,10}( [a-z]{1,10}){0,8}[.?!]?",
        3 => any::<String>(),
        1 => prop::sample::select(vec![
            "ok", "😂", "You sent a photo.", "Ann reacted 😂 to your message", "", "  \n ",
            "https://example.com", "Zażółć gęślą jaźń", "line one\nline two",
        ])
        .prop_map(String::from),
        1 => ("[a-z]{1,8} ?", 10usize..200).prop_map(|(word, n)| word.repeat(n)),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["Ann", "Bob", "Łukasz", "李雷", "a rather long display name for a sender"])
            .prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// Up to 150 messages in up to 3 threads; each thread's clock moves forward by 1 ms to 3 h per
/// message, so timestamps are unique within a thread and sessions and coalescing both happen.
fn messages() -> impl Strategy<Value = Vec<Message>> {
    let gap = prop_oneof![3 => 1i64..150_000, 1 => 1i64..12_000_000];
    let one = (0usize..3, 0usize..3, gap, name(), text(), 0u8..12);
    prop::collection::vec(one, 0..150).prop_map(|specs| {
        let mut clocks = [1_600_000_000_000i64; 3];
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (thread, sender, gap, name, text, flag))| {
                clocks[thread] += gap;
                Message {
                    id: format!("m{i}"),
                    thread_id: ["alpha", "beta", "γ-thread"][thread].into(),
                    thread_name: String::new(),
                    sender_id: format!("u{sender}"),
                    sender_name: name,
                    timestamp_ms: clocks[thread],
                    text,
                    flags: Flags {
                        attachment: flag == 0,
                        unsent: flag == 1,
                        ..Flags::default()
                    },
                }
            })
            .collect()
    })
}

#[derive(Debug, Clone)]
struct Settings {
    window: usize,
    overlap: usize,
    max_chars: usize,
    coalesce_chars: usize,
    coalesce_secs: u64,
    session_secs: u64,
}

impl Settings {
    fn chunker(&self) -> ChatChunker {
        ChatChunker::default()
            .with_window(self.window)
            .with_overlap(self.overlap)
            .with_max_chars(self.max_chars)
            .with_coalesce_chars(self.coalesce_chars)
            .with_coalesce_gap(Duration::from_secs(self.coalesce_secs))
            .with_session_gap(Duration::from_secs(self.session_secs))
    }
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        1usize..12,
        0usize..12,
        16usize..700,
        0usize..400,
        0u64..300,
        60u64..20_000,
    )
        .prop_map(
            |(window, overlap, max_chars, coalesce_chars, coalesce_secs, session_secs)| Settings {
                window,
                overlap: overlap % window,
                max_chars,
                coalesce_chars,
                coalesce_secs,
                session_secs,
            },
        )
}

/// Consecutive chunks of the same session.
fn neighbours(chunks: &[Chunk]) -> impl Iterator<Item = (&Chunk, &Chunk)> {
    chunks
        .windows(2)
        .map(|w| (&w[0], &w[1]))
        .filter(|(a, b)| a.thread_id == b.thread_id && a.session_idx == b.session_idx)
}

/// How many message ids end `a` and start `b`, checking that they are the same ones.
fn shared(a: &Chunk, b: &Chunk) -> usize {
    let n = a
        .message_ids
        .iter()
        .filter(|id| b.message_ids.contains(id))
        .count();
    assert_eq!(
        a.message_ids[a.message_ids.len() - n..],
        b.message_ids[..n],
        "shared messages must end one chunk and start the next"
    );
    n
}

/// Which generated messages the chunker must keep, decided here rather than by the crate's own
/// filter: not unsent, some text, and not one of the system texts the generator draws (the
/// random texts are astronomically unlikely to spell one of Messenger's event lines).
fn expected_kept(message: &Message) -> bool {
    const SYSTEM_TEXTS: [&str; 2] = ["You sent a photo.", "Ann reacted 😂 to your message"];
    !message.flags.unsent
        && !message.text.trim().is_empty()
        && !SYSTEM_TEXTS.contains(&message.text.as_str())
}

proptest! {
    #[test]
    fn chunks_keep_every_message_within_limits_and_in_time_order(
        messages in messages(),
        settings in settings(),
    ) {
        let out = settings.chunker().chunk(&messages).unwrap();
        let by_id: HashMap<&str, &Message> = messages.iter().map(|m| (m.id.as_str(), m)).collect();
        let mut seen: HashSet<&str> = HashSet::new();
        for chunk in &out.chunks {
            prop_assert!(chunk.text.chars().count() <= settings.max_chars);
            prop_assert_eq!(chunk.message_count, chunk.message_ids.len());
            prop_assert!(chunk.start_timestamp_ms <= chunk.end_timestamp_ms);
            let times: Vec<i64> = chunk.message_ids.iter().map(|id| by_id[id.as_str()].timestamp_ms).collect();
            prop_assert!(times.windows(2).all(|w| w[0] <= w[1]), "messages in time order");
            prop_assert_eq!(times.first().copied(), Some(chunk.start_timestamp_ms));
            prop_assert_eq!(times.last().copied(), Some(chunk.end_timestamp_ms));
            seen.extend(chunk.message_ids.iter().map(String::as_str));
        }
        // A turn is never split when its label (at most half the limit) and its text fit.
        let room = settings.max_chars - settings.max_chars / 2;
        for message in &messages {
            let kept = expected_kept(message);
            prop_assert_eq!(seen.contains(message.id.as_str()), kept, "message {}", message.id);
            let text = message.text.trim();
            if kept && settings.coalesce_chars.max(text.chars().count()) <= room {
                prop_assert!(
                    out.chunks.iter().any(|c| c.message_ids.contains(&message.id) && c.text.contains(text)),
                    "text of {} in a chunk", message.id
                );
            }
        }
        // Threads in id order; within one, sessions and chunks count up and time moves forward.
        for pair in out.chunks.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            prop_assert!(a.thread_id <= b.thread_id);
            if a.thread_id == b.thread_id {
                let next = (a.session_idx, a.chunk_idx + 1) == (b.session_idx, b.chunk_idx)
                    || (a.session_idx + 1, 0) == (b.session_idx, b.chunk_idx);
                prop_assert!(next, "({}, {}) then ({}, {})", a.session_idx, a.chunk_idx, b.session_idx, b.chunk_idx);
                prop_assert!(a.start_timestamp_ms <= b.start_timestamp_ms);
                prop_assert!(a.end_timestamp_ms <= b.end_timestamp_ms);
                if a.session_idx != b.session_idx {
                    prop_assert!(b.start_timestamp_ms - a.end_timestamp_ms > settings.session_secs as i64 * 1000);
                }
            }
        }
        let ids: HashSet<&str> = out.chunks.iter().map(|c| c.chunk_id.as_str()).collect();
        prop_assert_eq!(ids.len(), out.chunks.len(), "chunk ids are unique");
        prop_assert_eq!(out.stats.chunks, out.chunks.len());
        prop_assert_eq!(out.stats.messages, messages.len());
    }

    #[test]
    fn output_is_identical_across_runs_and_input_orders(
        (messages, shuffled) in messages().prop_flat_map(|m| (Just(m.clone()), Just(m).prop_shuffle())),
        settings in settings(),
    ) {
        let chunker = settings.chunker();
        let first = chunker.chunk(&messages).unwrap();
        prop_assert_eq!(&first, &chunker.chunk(&messages).unwrap());
        prop_assert_eq!(&first, &chunker.chunk(&shuffled).unwrap());
    }

    #[test]
    fn uncut_windows_share_exactly_the_overlap(
        messages in messages(),
        window in 1usize..12,
        overlap in 0usize..12,
    ) {
        let overlap = overlap % window;
        // No coalescing and no character limit in reach: every window is cut by count alone.
        let chunker = ChatChunker::default()
            .with_window(window)
            .with_overlap(overlap)
            .with_coalesce_chars(0)
            .with_max_chars(10_000_000);
        let chunks = chunker.chunk(&messages).unwrap().chunks;
        for (a, b) in neighbours(&chunks) {
            prop_assert_eq!(a.message_count, window);
            prop_assert_eq!(shared(a, b), overlap);
        }
    }

    #[test]
    fn windows_cut_by_the_character_limit_share_no_more_than_the_overlap(
        messages in messages(),
        settings in settings(),
    ) {
        let chunker = settings.chunker().with_coalesce_chars(0);
        let chunks = chunker.chunk(&messages).unwrap().chunks;
        for (a, b) in neighbours(&chunks) {
            // One more when a message split into pieces straddles the border.
            prop_assert!(shared(a, b) <= settings.overlap + 1);
            prop_assert!(a.message_count <= settings.window);
            prop_assert!(b.end_timestamp_ms >= a.end_timestamp_ms);
            prop_assert_ne!(&a.chunk_id, &b.chunk_id, "pieces of one message get their own ids");
        }
    }
}
