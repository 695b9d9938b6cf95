//! Readers: the Messenger export (with its text repair and derived ids) and JSONL.

mod common;

use std::io::Cursor;
use std::path::Path;

use rembed::chunk::{
    parse_jsonl, read_messages, read_messenger, repair_mojibake, write_chunks_jsonl, ChatChunker,
    DropReason, Message,
};

fn export_dir() -> std::path::PathBuf {
    common::fixture("messenger")
}

#[test]
fn repair_turns_escaped_bytes_back_into_text() {
    // What JSON parsing of the export's `\u00f0\u009f\u0098\u0082` gives; shown as "ðŸ˜‚".
    assert_eq!(repair_mojibake("\u{f0}\u{9f}\u{98}\u{82}"), "😂");
    assert_eq!(repair_mojibake("\u{c5}\u{82}"), "ł"); // shown as "Å‚"
    assert_eq!(repair_mojibake("Za\u{c5}\u{bc}\u{c3}\u{b3}\u{c5}\u{82}\u{c4}\u{87} g\u{c4}\u{99}\u{c5}\u{9b}l\u{c4}\u{85} ja\u{c5}\u{ba}\u{c5}\u{84}"), "Zażółć gęślą jaźń");
    assert_eq!(repair_mojibake("plain ascii"), "plain ascii");
}

#[test]
fn repair_leaves_correct_text_alone() {
    // Already-correct text: a character above U+00FF, or Latin-1 bytes that are not UTF-8.
    for text in ["Zażółć 😂", "café", "naïve résumé", "¿qué?"] {
        assert_eq!(repair_mojibake(text), text);
        assert_eq!(repair_mojibake(&repair_mojibake(text)), text, "idempotent");
    }
}

#[test]
fn export_is_read_in_time_order_with_repaired_text() {
    let messages = read_messenger(&export_dir()).unwrap();
    let thread: Vec<&Message> = messages
        .iter()
        .filter(|m| m.thread_id == "inbox/lukaszbob_abc123")
        .collect();
    assert_eq!(thread.len(), 7, "two files of one thread");
    assert!(thread
        .windows(2)
        .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
    assert_eq!(thread[0].text, "Cześć! Jedziemy w sobotę?");
    assert_eq!(thread[2].text, "Tak 😂");
    assert_eq!(thread[2].sender_name, "Łukasz Bob");
    assert_eq!(thread[2].sender_id, "Łukasz Bob");
    assert_eq!(thread[0].thread_name, "Łukasz Bob");
    assert!(thread[1].flags.attachment && thread[1].text.is_empty());
    assert!(thread[4].flags.call);
    assert!(thread[5].flags.unsent);
    assert_eq!(thread[6].text, "Zażółć gęślą jaźń");

    let group: Vec<&Message> = messages
        .iter()
        .filter(|m| m.thread_id == "group_xyz")
        .collect();
    assert_eq!(
        group.len(),
        4,
        "a thread without thread_path is named by its folder"
    );
    assert_eq!(group[0].thread_name, "Cy, Di", "no title: the participants");
    assert!(group[1].flags.attachment);
    assert!(group[2].flags.system);
}

#[test]
fn export_ids_are_derived_unique_and_stable() {
    let first = read_messenger(&export_dir()).unwrap();
    let second = read_messenger(&export_dir()).unwrap();
    assert_eq!(first, second);
    let mut ids: Vec<&str> = first.iter().map(|m| m.id.as_str()).collect();
    assert!(ids.iter().all(|id| id.len() == 32));
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), first.len());
}

#[test]
fn a_single_export_file_can_be_read() {
    let file = export_dir().join("inbox/lukaszbob_abc123/message_2.json");
    let messages = read_messages(&file).unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0].text, "Cześć! Jedziemy w sobotę?");
}

#[test]
fn export_chunks_drop_noise_and_split_sessions() {
    let messages = read_messages(&export_dir()).unwrap();
    let out = ChatChunker::default().chunk(&messages).unwrap();
    let texts: Vec<&str> = out.chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "[Cy]: anyone up for climbing?\n[Di]: me!",
            "[Ann Nowak]: Cześć! Jedziemy w sobotę?\n[Łukasz Bob]: Tak 😂",
            "[Ann Nowak]: Zażółć gęślą jaźń",
        ]
    );
    assert_eq!(out.stats.messages, 11);
    assert_eq!(out.stats.sessions, 3);
    let dropped = |r| out.stats.dropped.get(&r).copied().unwrap_or(0);
    assert_eq!(dropped(DropReason::AttachmentOnly), 2);
    assert_eq!(dropped(DropReason::Reaction), 1);
    assert_eq!(dropped(DropReason::Call), 1);
    assert_eq!(dropped(DropReason::Unsent), 1);
    assert_eq!(dropped(DropReason::System), 1);
}

#[test]
fn jsonl_messages_parse_with_defaults_and_derived_ids() {
    let input = r#"{"id":"a","thread_id":"t","thread_name":"T","sender_id":"u1","sender_name":"Ann","timestamp_ms":5,"text":"hi"}

{"thread_id":"t","sender_name":"Bob","timestamp_ms":7,"text":"yo"}
{"thread_id":"t","sender_name":"Bob","timestamp_ms":7,"text":"yo"}
"#;
    let messages = parse_jsonl(Cursor::new(input), Path::new("mem.jsonl")).unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0].id, "a");
    assert_eq!(messages[1].sender_id, "");
    assert_eq!(messages[1].id.len(), 32);
    assert_ne!(
        messages[1].id, messages[2].id,
        "identical messages stay distinct"
    );
}

#[test]
fn a_jsonl_file_is_read_by_its_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages.jsonl");
    let lines = [
        r#"{"id":"b","thread_id":"t","sender_id":"u2","sender_name":"Bob","timestamp_ms":2000,"text":"hey"}"#,
        r#"{"id":"a","thread_id":"t","sender_id":"u1","sender_name":"Ann","timestamp_ms":1000,"text":"hi"}"#,
    ];
    std::fs::write(&path, lines.join("\n")).unwrap();
    let messages = read_messages(&path).unwrap();
    assert_eq!(messages.len(), 2);
    let chunks = ChatChunker::default().chunk(&messages).unwrap().chunks;
    assert_eq!(chunks[0].text, "[Ann]: hi\n[Bob]: hey");
}

#[test]
fn malformed_jsonl_names_file_and_line() {
    let input = "{\"thread_id\":\"t\",\"timestamp_ms\":1}\n{\"thread_id\":\"t\"}\n";
    let err = parse_jsonl(Cursor::new(input), Path::new("bad.jsonl")).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, rembed::Error::Malformed { .. }), "{text}");
    assert!(
        text.contains("bad.jsonl") && text.contains("line 2"),
        "{text}"
    );
}

#[test]
fn unknown_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("notes.txt");
    std::fs::write(&odd, "hello").unwrap();
    assert!(matches!(
        read_messages(&odd),
        Err(rembed::Error::Malformed { .. })
    ));
    assert!(matches!(
        read_messages(&dir.path().join("missing.jsonl")),
        Err(rembed::Error::Io { .. })
    ));
}

#[test]
fn chunks_round_trip_through_jsonl() {
    let messages = read_messages(&export_dir()).unwrap();
    let chunks = ChatChunker::default().chunk(&messages).unwrap().chunks;
    let mut out = Vec::new();
    write_chunks_jsonl(&mut out, &chunks, Path::new("mem")).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), chunks.len());
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for field in [
        "chunk_id",
        "thread_id",
        "thread_name",
        "session_idx",
        "chunk_idx",
        "participant_ids",
        "participant_names",
        "text",
        "message_ids",
        "start_timestamp_ms",
        "end_timestamp_ms",
        "message_count",
    ] {
        assert!(first.get(field).is_some(), "missing {field}");
    }
    let back: Vec<rembed::chunk::Chunk> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back, chunks);
}

/// Writes `message_N.json` of one thread; `messages` are (sender, timestamp in s, text), oldest
/// first (the file lists them newest first, as the export does).
fn write_export_file(dir: &Path, n: usize, messages: &[(&str, i64, &str)]) {
    let listed: Vec<serde_json::Value> = messages
        .iter()
        .rev()
        .map(|(sender, at_s, text)| {
            serde_json::json!({"sender_name": sender, "timestamp_ms": at_s * 1000, "content": text})
        })
        .collect();
    let file = serde_json::json!({
        "participants": [{"name": "Ann"}, {"name": "Bob"}],
        "title": "Ann",
        "thread_path": "inbox/ann_1",
        "messages": listed,
    });
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(format!("message_{n}.json")),
        serde_json::to_string(&file).unwrap(),
    )
    .unwrap();
}

#[test]
fn messages_repeated_across_export_files_are_kept_once() {
    let root = tempfile::tempdir().unwrap();
    let thread = root.path().join("inbox/ann_1");
    // message_2 holds the older messages; message_1 starts again with the last two of them,
    // as real exports of long threads do at file boundaries.
    write_export_file(
        &thread,
        2,
        &[
            ("Ann", 0, "msg 18"),
            ("Bob", 10, "msg 19"),
            ("Ann", 20, "msg 20"),
        ],
    );
    write_export_file(
        &thread,
        1,
        &[
            ("Bob", 10, "msg 19"),
            ("Ann", 20, "msg 20"),
            ("Bob", 30, "msg 21"),
        ],
    );
    let messages = read_messenger(root.path()).unwrap();
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["msg 18", "msg 19", "msg 20", "msg 21"]);
    let chunks = ChatChunker::default().chunk(&messages).unwrap().chunks;
    assert_eq!(chunks.len(), 1);
    assert!(
        !chunks[0].text.contains("msg 20\nmsg 20"),
        "{}",
        chunks[0].text
    );
    assert_eq!(
        chunks[0].text.matches("msg 20").count(),
        1,
        "{}",
        chunks[0].text
    );
}

#[test]
fn repeats_within_one_file_and_near_misses_are_kept() {
    let root = tempfile::tempdir().unwrap();
    let thread = root.path().join("inbox/ann_1");
    // Sent twice in the same second: both copies are real, and the overlap in message_1 repeats
    // both, so two stay.
    write_export_file(&thread, 2, &[("Ann", 0, "ok"), ("Ann", 0, "ok")]);
    write_export_file(
        &thread,
        1,
        &[
            ("Ann", 0, "ok"),
            ("Ann", 0, "ok"),
            ("Bob", 0, "ok"),  // another sender
            ("Ann", 1, "ok"),  // another time
            ("Ann", 0, "ok!"), // other text
        ],
    );
    let messages = read_messenger(root.path()).unwrap();
    let seen: Vec<(&str, i64, &str)> = messages
        .iter()
        .map(|m| {
            (
                m.sender_name.as_str(),
                m.timestamp_ms / 1000,
                m.text.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("Ann", 0, "ok"),
            ("Ann", 0, "ok"),
            ("Bob", 0, "ok"),
            ("Ann", 1, "ok"),
            ("Ann", 0, "ok!"),
        ]
    );
}

#[test]
fn an_export_folder_without_exports_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("inbox/ann_1/photos")).unwrap();
    std::fs::write(root.path().join("inbox/ann_1/photos/1.jpg"), b"").unwrap();
    std::fs::write(root.path().join("notes.json"), b"{}").unwrap();
    for path in [root.path().to_path_buf(), root.path().join("inbox")] {
        let err = read_messages(&path).unwrap_err();
        assert!(
            matches!(err, rembed::Error::Malformed { .. }),
            "{}: {err}",
            path.display()
        );
        assert!(err.to_string().contains("message_N.json"), "{err}");
    }
}
