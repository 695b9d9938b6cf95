//! No record disappears silently: every record of the shard without a vector is listed with
//! its id (in its JSON type) and why, ids that only differ in type are refused, odd input
//! encodings get messages that point at the line, and an output with nothing in it is not
//! reported as a success.
#![cfg(feature = "job")]

mod job_support;

use std::path::Path;

use job_support::{load, read_output, write_jsonl};
use rembed::job::{self, RecordId, Skipped, Why};
use serde_json::json;

fn config(input: &Path, output: &Path) -> job::Config {
    job::Config::new(input, output).with_progress(false)
}

fn listed(report: &job::Report) -> Vec<Skipped> {
    job::read_skipped(report.not_embedded.as_ref().expect("no list")).unwrap()
}

#[test]
fn records_without_a_vector_are_listed_and_typed_ids_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    write_jsonl(
        &input,
        &[
            json!({"id": "42", "text": "the string id"}),
            json!({"id": 42, "text": "the number id"}),
            json!({"id": "a", "text": "first text"}),
            json!({"id": "a", "text": "first text"}),
            json!({"id": "a", "text": "another text"}),
            json!({"id": "e", "text": "  "}),
            json!({"id": 7, "text": "a number alone"}),
        ],
    );
    let output = dir.path().join("out");
    let report = job::run(&load("bert-mean"), &config(&input, &output)).unwrap();
    let c = report.counts;
    assert_eq!((c.read, c.unique, c.duplicates), (7, 4, 3), "{report}");
    assert_eq!(
        (c.id_conflicts, c.duplicates_other_text),
        (1, 1),
        "{report}"
    );
    assert_eq!((c.empty, c.embedded), (1, 3), "{report}");
    assert!(report.balanced() && !report.all_embedded(), "{report}");

    let mut list = listed(&report);
    list.sort_by_key(|s| s.line);
    let summary: Vec<(u64, Option<RecordId>, Why)> =
        list.iter().map(|s| (s.line, s.id.clone(), s.why)).collect();
    assert_eq!(
        summary,
        [
            (2, Some(RecordId::number(&42.into())), Why::IdConflict),
            (5, Some(RecordId::string("a")), Why::DuplicateOtherText),
            (6, Some(RecordId::string("e")), Why::Empty),
        ]
    );
    // The file keeps the JSON type: 42, not "42".
    let text = std::fs::read_to_string(report.not_embedded.as_ref().unwrap()).unwrap();
    assert!(text.contains("\"id\":42,"), "{text}");
    let rows = read_output(&output);
    assert_eq!(rows.keys().collect::<Vec<_>>(), ["42", "7", "a"]);
    let manifest = job::Manifest::read(&report.manifest).unwrap();
    assert_eq!(
        manifest.not_embedded.as_deref(),
        Some("_not_embedded.jsonl")
    );
}

#[test]
fn a_byte_order_mark_and_invalid_utf8_get_useful_messages() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    let mut bytes = b"\xEF\xBB\xBF{\"id\": \"first\", \"text\": \"after a BOM\"}\n".to_vec();
    bytes.extend_from_slice(b"{\"id\": \"ok\", \"text\": \"fine\"}\n");
    bytes.extend_from_slice(b"{\"id\": \"latin1\", \"text\": \"caf\xe9\"}\n");
    std::fs::write(&input, bytes).unwrap();
    let report = job::run(&load("bert-mean"), &config(&input, &dir.path().join("out"))).unwrap();
    assert_eq!(
        (report.counts.embedded, report.counts.malformed),
        (2, 1),
        "{report}"
    );
    let failure = &report.failures[0];
    assert_eq!(failure.line, 3);
    assert!(failure.reason.contains("not UTF-8"), "{}", failure.reason);
    assert!(report.to_string().contains("failed line 3"), "{report}");
}

#[test]
fn nothing_embedded_from_a_non_empty_input_is_not_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    let records: Vec<_> = (0..20).map(|i| json!({"id": i, "text": ""})).collect();
    write_jsonl(&input, &records);
    let output = dir.path().join("out");
    let report = job::run(&load("bert-mean"), &config(&input, &output)).unwrap();
    assert!(
        report.embedded_nothing() && !report.all_embedded(),
        "{report}"
    );
    assert!(report.to_string().contains("NOTHING EMBEDDED"), "{report}");
    let check = job::verify(&output, None).unwrap();
    assert!(!check.ok(), "{check}");
}

#[test]
fn verify_on_an_empty_folder_says_there_is_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let error = job::verify(dir.path(), None).unwrap_err();
    assert!(matches!(error, job::Error::NoOutput { .. }), "{error}");
    assert!(error.to_string().contains("no job output"), "{error}");
}
