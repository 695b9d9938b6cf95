//! `embed_corpus` as a cluster runs it: stopped by SIGTERM or SIGINT mid-run it saves the
//! finished batches and exits 143 or 130; its log is plain text with a start-up line and
//! progress lines; `verify | head` does not panic; a typo'd text field or an input with nothing
//! to embed exits non-zero.
//!
//! These run the example binary that `cargo test` builds beside the test binaries
//! (`target/<profile>/examples/embed_corpus`); a run limited with `--test job_cli` must build it
//! first: `cargo build --release --features job --example embed_corpus`. In a target directory
//! shared between checkouts that file is whichever checkout built last. (Asking cargo to build
//! it from inside the test was tried: cargo reports the same shared path, and the nested build,
//! without dev-dependencies, resolves other features than the test's own build.)
#![cfg(all(feature = "job", unix))]

mod job_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use job_support::{fixture, load, read_output, write_jsonl};
use rembed::job::{self, Manifest, Shard};
use serde_json::json;

fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples/embed_corpus");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --release --features job --example embed_corpus` \
         (plain `cargo test` builds it)",
        path.display()
    );
    path
}

fn embed_corpus(args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .args(["--model", &fixture("bert-mean"), "--device", "cpu"])
        .args(args)
        .env("RUST_LOG", "warn,rembed::job=info")
        .stdin(Stdio::null());
    command
}

fn corpus(path: &Path, records: usize) {
    let records: Vec<_> = (0..records)
        .map(|i| json!({"id": format!("doc-{i}"), "text": format!("alpha beta record {i} in words")}))
        .collect();
    write_jsonl(path, &records);
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Starts a long run, signals it once it has embedded something, and checks what was kept.
fn stop_mid_run(signal: libc::c_int, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    corpus(&input, 40_000);
    let output = dir.path().join("out");
    let (input_arg, output_arg) = (input.to_string_lossy(), output.to_string_lossy());
    // No checkpoint would come before the end: whatever is kept, the signal handler saved.
    let args = [
        "--input",
        &input_arg,
        "--output",
        &output_arg,
        "--batch-records",
        "50",
        "--checkpoint-every",
        "1000000",
        "--log-every",
        "0.2",
    ];
    let mut child = embed_corpus(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let _ = tx.send(line.unwrap());
        }
    });
    // Signal once a progress line shows finished batches.
    let mut log = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no progress line: {log}"));
        log.push_str(&line);
        log.push('\n');
        let embedded = line
            .split(" embedded and")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok());
        if embedded.is_some_and(|n| n > 0) {
            break;
        }
    }
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with the pid of our own child, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    log.extend(rx.try_iter().map(|line| line + "\n"));
    assert_eq!(status.code(), Some(code), "{log}");
    assert!(log.contains("after the batch in flight"), "{log}");

    // Plain text: no colour codes in a log file; a start-up line; progress lines as batches
    // finish.
    assert!(!log.contains('\u{1b}'), "ANSI codes in the log: {log:?}");
    let start = log
        .lines()
        .find(|l| l.contains("starting"))
        .expect("no start-up line");
    for word in [
        "an unsharded run",
        "bert-mean",
        "weights sha256",
        "device cpu",
    ] {
        assert!(start.contains(word), "{start}");
    }
    assert!(log.contains("% of the input"), "{log}");

    let manifest = Manifest::read(&output.join(Manifest::file_name(Shard::ALL))).unwrap();
    let rows = read_output(&output).len() as u64;
    assert!(rows > 0 && rows < 40_000, "{rows} rows");
    assert_eq!(rows % 50, 0, "a part of a batch was kept");
    assert_eq!(manifest.counts.embedded, rows);
    assert!(!manifest.complete);
    assert!(manifest.runs[0].stopped_by.is_some());

    // The same command again finishes the job, without redoing what was kept.
    let out = embed_corpus(&args).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest = Manifest::read(&output.join(Manifest::file_name(Shard::ALL))).unwrap();
    assert_eq!(manifest.counts.resumed, rows);
    assert!(job::verify(&output, None).unwrap().ok());
}

#[test]
fn sigterm_keeps_the_finished_batches_and_exits_143() {
    stop_mid_run(libc::SIGTERM, 143);
}

#[test]
fn sigint_keeps_the_finished_batches_and_exits_130() {
    stop_mid_run(libc::SIGINT, 130);
}

#[test]
fn verify_into_a_closed_pipe_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    corpus(&input, 50);
    let output = dir.path().join("out");
    job::run(
        &load("bert-mean"),
        &job::Config::new(&input, &output).with_progress(false),
    )
    .unwrap();
    // `verify | head` once head has exited: the read end is closed before anything is written.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(binary())
        .args(["verify", "--output", &output.to_string_lossy()])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let log = text(&out.stderr);
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(out.status.code(), Some(0), "{log}");
}

#[test]
fn a_typo_in_the_text_field_or_nothing_to_embed_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    corpus(&input, 30);
    let output = dir.path().join("out");
    let (input_arg, output_arg) = (input.to_string_lossy(), output.to_string_lossy());
    let out = embed_corpus(&["--input", &input_arg, "--output", &output_arg])
        .args(["--text-field", "body"])
        .output()
        .unwrap();
    let log = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("`body`") && log.contains("--text-field"),
        "{log}"
    );

    let empty = dir.path().join("empty.jsonl");
    let records: Vec<_> = (0..10).map(|i| json!({"id": i, "text": " "})).collect();
    write_jsonl(&empty, &records);
    let empty_arg = empty.to_string_lossy();
    let out = embed_corpus(&["--input", &empty_arg, "--output", &output_arg])
        .output()
        .unwrap();
    let log = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("NOTHING EMBEDDED"), "{log}");
}
