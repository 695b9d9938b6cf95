//! Hand-written conversations, one per chat-chunking rule: the coalescing gap and cap, the session
//! gap, windows and overlap, the character limit, filtering, ordering and ids.

use std::time::Duration;

use rembed::chunk::{is_low_signal, ChatChunker, DropReason, Filter, Flags, Message};

const S: i64 = 1000;
const HOUR: i64 = 3600 * S;

fn msg(id: &str, sender: &str, at_ms: i64, text: &str) -> Message {
    Message {
        id: id.into(),
        thread_id: "t1".into(),
        thread_name: "Trip".into(),
        sender_id: sender.to_lowercase(),
        sender_name: sender.into(),
        timestamp_ms: at_ms,
        text: text.into(),
        flags: Flags::default(),
    }
}

fn texts(messages: &[Message], chunker: &ChatChunker) -> Vec<String> {
    chunker
        .chunk(messages)
        .expect("valid settings")
        .chunks
        .into_iter()
        .map(|c| c.text)
        .collect()
}

#[test]
fn messages_120_s_apart_coalesce_and_120_001_s_do_not() {
    let chunker = ChatChunker::default();
    let joined = [
        msg("1", "Ann", 0, "first"),
        msg("2", "Ann", 120 * S, "second"),
    ];
    assert_eq!(texts(&joined, &chunker), ["[Ann]: first\nsecond"]);
    let apart = [
        msg("1", "Ann", 0, "first"),
        msg("2", "Ann", 120 * S + 1, "second"),
    ];
    assert_eq!(texts(&apart, &chunker), ["[Ann]: first\n[Ann]: second"]);
    let out = chunker.chunk(&apart).unwrap();
    assert_eq!(out.stats.turns, 2);
}

#[test]
fn coalescing_gap_is_measured_from_the_previous_message() {
    let burst = [
        msg("1", "Ann", 0, "a1"),
        msg("2", "Ann", 100 * S, "a2"),
        msg("3", "Ann", 200 * S, "a3"),
    ];
    assert_eq!(
        texts(&burst, &ChatChunker::default()),
        ["[Ann]: a1\na2\na3"]
    );
    let custom = ChatChunker::default().with_coalesce_gap(Duration::from_secs(50));
    assert_eq!(texts(&burst, &custom), ["[Ann]: a1\n[Ann]: a2\n[Ann]: a3"]);
}

#[test]
fn another_sender_in_between_stops_coalescing() {
    let talk = [
        msg("1", "Ann", 0, "hi"),
        msg("2", "Bob", S, "hey"),
        msg("3", "Ann", 2 * S, "how are you"),
    ];
    assert_eq!(
        texts(&talk, &ChatChunker::default()),
        ["[Ann]: hi\n[Bob]: hey\n[Ann]: how are you"]
    );
}

#[test]
fn coalesced_turns_stop_at_500_characters() {
    let a = "a".repeat(300);
    let fits = [msg("1", "Ann", 0, &a), msg("2", "Ann", S, &"b".repeat(199))];
    let out = ChatChunker::default().chunk(&fits).unwrap();
    assert_eq!(out.stats.turns, 1, "300 + newline + 199 = 500 characters");
    let over = [msg("1", "Ann", 0, &a), msg("2", "Ann", S, &"b".repeat(200))];
    let out = ChatChunker::default().chunk(&over).unwrap();
    assert_eq!(out.stats.turns, 2, "501 characters");
    let off = ChatChunker::default()
        .with_coalesce_chars(0)
        .chunk(&fits)
        .unwrap();
    assert_eq!(off.stats.turns, 2, "a cap of 0 turns coalescing off");
}

#[test]
fn a_gap_of_exactly_2_h_stays_in_the_session_and_longer_starts_a_new_one() {
    let chunker = ChatChunker::default();
    let same = [
        msg("1", "Ann", 0, "before"),
        msg("2", "Bob", 2 * HOUR, "after"),
    ];
    let out = chunker.chunk(&same).unwrap();
    assert_eq!((out.stats.sessions, out.chunks.len()), (1, 1));
    let split = [
        msg("1", "Ann", 0, "before"),
        msg("2", "Bob", 2 * HOUR + 1, "after"),
    ];
    let out = chunker.chunk(&split).unwrap();
    assert_eq!(out.stats.sessions, 2);
    let positions: Vec<_> = out
        .chunks
        .iter()
        .map(|c| (c.session_idx, c.chunk_idx))
        .collect();
    assert_eq!(positions, [(0, 0), (1, 0)]);
}

#[test]
fn sessions_cut_coalescing_even_with_a_longer_coalescing_gap() {
    let chunker = ChatChunker::default()
        .with_coalesce_gap(Duration::from_secs(10 * 3600))
        .with_session_gap(Duration::from_secs(3600));
    let talk = [
        msg("1", "Ann", 0, "late"),
        msg("2", "Ann", 2 * HOUR, "next day"),
    ];
    let out = chunker.chunk(&talk).unwrap();
    assert_eq!((out.stats.sessions, out.stats.turns), (2, 2));
}

/// `n` alternating one-word messages a second apart, so none coalesce.
fn alternating(n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| {
            let sender = if i % 2 == 0 { "Ann" } else { "Bob" };
            msg(&format!("m{i}"), sender, i as i64 * S, &format!("word{i}"))
        })
        .collect()
}

#[test]
fn windows_of_30_share_10_messages() {
    let out = ChatChunker::default().chunk(&alternating(50)).unwrap();
    let ids: Vec<&Vec<String>> = out.chunks.iter().map(|c| &c.message_ids).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0].len(), 30);
    assert_eq!(ids[1].len(), 30);
    assert_eq!(
        ids[0][20..],
        ids[1][..10],
        "the last 10 of one are the first 10 of the next"
    );
    assert_eq!(ids[1].last().map(String::as_str), Some("m49"));

    let custom = ChatChunker::default().with_window(4).with_overlap(1);
    let out = custom.chunk(&alternating(7)).unwrap();
    let firsts: Vec<_> = out
        .chunks
        .iter()
        .map(|c| c.message_ids[0].as_str())
        .collect();
    assert_eq!(firsts, ["m0", "m3"], "windows of 4 stepping by 3");
}

#[test]
fn the_character_limit_ends_a_window_early() {
    // Each line is "[Ann]: " + 100 characters = 107; nine lines and eight newlines are 971.
    let messages: Vec<Message> = (0..40)
        .map(|i| {
            let sender = if i % 2 == 0 { "Ann" } else { "Bob" };
            msg(&format!("m{i}"), sender, i * S, &"x".repeat(100))
        })
        .collect();
    let out = ChatChunker::default()
        .with_max_chars(1000)
        .chunk(&messages)
        .unwrap();
    assert_eq!(out.chunks[0].message_count, 9);
    assert!(out.chunks.iter().all(|c| c.text.chars().count() <= 1000));
    // A window cut to 9 of 30 keeps 10 * 9 / 30 = 3 messages of overlap.
    assert_eq!(out.chunks[1].message_ids[0], "m6");
    let last = out.chunks.last().unwrap();
    assert_eq!(last.message_ids.last().map(String::as_str), Some("m39"));
}

#[test]
fn a_message_longer_than_the_limit_is_split_not_dropped() {
    let words: Vec<String> = (0..2500).map(|i| format!("w{i:04}")).collect();
    let long = words.join(" "); // 14 999 characters
    let out = ChatChunker::default()
        .chunk(&[msg("big", "Ann", 0, &long)])
        .unwrap();
    assert_eq!(out.chunks.len(), 3);
    let mut rebuilt = String::new();
    for chunk in &out.chunks {
        assert!(chunk.text.chars().count() <= 6000);
        assert_eq!(chunk.message_ids, ["big"]);
        let piece = chunk.text.strip_prefix("[Ann]: ").expect("labelled line");
        assert!(
            piece.ends_with(' ') || chunk.chunk_idx == 2,
            "cut after a space"
        );
        rebuilt.push_str(piece);
    }
    assert_eq!(rebuilt, long);
}

#[test]
fn a_split_without_whitespace_never_cuts_a_character() {
    let long = "ł😂".repeat(5000);
    let out = ChatChunker::default()
        .chunk(&[msg("big", "Ann", 0, &long)])
        .unwrap();
    let rebuilt: String = out
        .chunks
        .iter()
        .map(|c| c.text.strip_prefix("[Ann]: ").expect("labelled line"))
        .collect();
    assert_eq!(rebuilt, long);
    assert!(out.chunks.iter().all(|c| c.text.chars().count() <= 6000));
}

#[test]
fn system_and_empty_messages_are_dropped_with_their_reason() {
    let flagged = |id: &str, flags: Flags| Message {
        flags,
        ..msg(id, "Bob", 0, "")
    };
    let messages = [
        msg("keep", "Ann", 0, "see you at the station"),
        msg("photo", "Ann", S, "You sent a photo."),
        msg("react1", "Bob", 2 * S, "Reacted 😂 to your message"),
        msg("react2", "Bob", 3 * S, "Bob reacted ❤️ to your message"),
        msg("missed", "Ann", 4 * S, "You missed a call from Bob."),
        msg("unsent", "Bob", 5 * S, "Bob unsent a message"),
        msg("rename", "Bob", 6 * S, "Bob named the group Trip 2024."),
        msg("blank", "Bob", 7 * S, "   \n"),
        flagged(
            "sticker",
            Flags {
                attachment: true,
                ..Flags::default()
            },
        ),
        flagged(
            "call",
            Flags {
                call: true,
                ..Flags::default()
            },
        ),
        Message {
            flags: Flags {
                unsent: true,
                ..Flags::default()
            },
            ..msg("unsent2", "Bob", 8 * S, "was here")
        },
    ];
    let out = ChatChunker::default().chunk(&messages).unwrap();
    assert_eq!(out.chunks.len(), 1);
    assert_eq!(out.chunks[0].message_ids, ["keep"]);
    let dropped = |r: DropReason| out.stats.dropped.get(&r).copied().unwrap_or(0);
    assert_eq!(dropped(DropReason::AttachmentOnly), 2);
    assert_eq!(dropped(DropReason::Reaction), 2);
    assert_eq!(dropped(DropReason::Call), 2);
    assert_eq!(dropped(DropReason::Unsent), 2);
    assert_eq!(dropped(DropReason::System), 1);
    assert_eq!(dropped(DropReason::Empty), 1);
    assert_eq!(out.stats.dropped_total(), 10);
}

#[test]
fn real_messages_that_look_like_patterns_are_kept() {
    let filter = Filter::default();
    for text in [
        "I reacted badly to your message yesterday, sorry",
        "You sent a photo of the cat? I never got it",
        "she said \"you sent a photo\"",
        "Did the group name change?",
    ] {
        assert_eq!(filter.text_reason(text), None, "{text}");
    }
    let too_long_name = format!("{} reacted 😂 to your message", "x".repeat(65));
    assert_eq!(filter.text_reason(&too_long_name), None);
}

#[test]
fn custom_patterns_extend_the_filter() {
    let filter = Filter::without_patterns()
        .with_pattern("* hat ein Foto gesendet.", DropReason::AttachmentOnly);
    assert_eq!(
        filter.text_reason("Ann hat ein Foto gesendet."),
        Some(DropReason::AttachmentOnly)
    );
    assert_eq!(filter.text_reason("You sent a photo."), None);
}

#[test]
fn order_is_thread_then_time_then_input_position() {
    let mut other = msg("o1", "Cy", 5 * S, "other thread");
    other.thread_id = "t0".into();
    let messages = [
        msg("late", "Bob", 10 * S, "third"),
        msg("tie-a", "Ann", 5 * S, "first of a tie"),
        other,
        msg("tie-b", "Bob", 5 * S, "second of a tie"),
    ];
    let out = ChatChunker::default().chunk(&messages).unwrap();
    let threads: Vec<_> = out.chunks.iter().map(|c| c.thread_id.as_str()).collect();
    assert_eq!(threads, ["t0", "t1"]);
    assert_eq!(out.chunks[1].message_ids, ["tie-a", "tie-b", "late"]);
    assert_eq!(
        out.chunks[1].text,
        "[Ann]: first of a tie\n[Bob]: second of a tie\nthird"
    );
}

#[test]
fn chunk_fields_describe_the_chunk() {
    let mut renamed = msg("3", "Ann", 20 * S, "ok then");
    renamed.thread_name = "Trip (renamed)".into();
    let messages = [
        msg("1", "Bob", 0, "hello"),
        msg("2", "Ann", 10 * S, "hi"),
        renamed,
    ];
    let chunk = &ChatChunker::default().chunk(&messages).unwrap().chunks[0];
    assert_eq!(chunk.thread_name, "Trip (renamed)", "the latest name");
    assert_eq!(chunk.participant_ids, ["bob", "ann"]);
    assert_eq!(chunk.participant_names, ["Bob", "Ann"]);
    assert_eq!(
        (chunk.start_timestamp_ms, chunk.end_timestamp_ms),
        (0, 20 * S)
    );
    assert_eq!(chunk.message_count, 3);
    assert_eq!(chunk.chunk_id.len(), 32);
}

#[test]
fn chunk_ids_are_stable_and_survive_appended_messages() {
    let chunker = ChatChunker::default();
    let first = chunker.chunk(&alternating(50)).unwrap();
    assert_eq!(first, chunker.chunk(&alternating(50)).unwrap());
    let mut more = alternating(50);
    more.push(msg("next-day", "Ann", 10 * HOUR, "morning"));
    let second = chunker.chunk(&more).unwrap();
    assert_eq!(second.chunks.len(), 3);
    assert_eq!(first.chunks[..], second.chunks[..2]);
    let mut ids: Vec<_> = second.chunks.iter().map(|c| &c.chunk_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
}

#[test]
fn invalid_settings_are_refused() {
    let refused = |chunker: ChatChunker| match chunker.chunk(&alternating(3)) {
        Err(rembed::Error::InvalidOption { option, .. }) => option,
        other => panic!("expected InvalidOption, got {other:?}"),
    };
    assert_eq!(refused(ChatChunker::default().with_window(0)), "window");
    assert_eq!(refused(ChatChunker::default().with_overlap(30)), "overlap");
    assert_eq!(
        refused(ChatChunker::default().with_max_chars(15)),
        "max_chars"
    );
}

#[test]
fn low_signal_texts() {
    for text in [
        "ok",
        "k",
        " 😂 ",
        "😂😂😂",
        "👍🏽",
        "❤️",
        "https://example.com/a?b=c",
        "www.rust-lang.org",
        "You sent a photo.",
        "",
    ] {
        assert!(is_low_signal(text), "{text:?} should be low signal");
    }
    for text in [
        "lol",
        "see you at 5",
        "https://example.com is down again",
        "😂 that was great",
        "ok 👍 see you",
    ] {
        assert!(!is_low_signal(text), "{text:?} should not be low signal");
    }
}
