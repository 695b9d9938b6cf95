//! The job's vectors are the embedder's: each record's row equals `Embedder::embed` of its text
//! (the model's document prompt applied), never the query prompt's or the bare text's, and the
//! text comes from the field the job was told to read.
#![cfg(feature = "job")]

mod job_support;

use job_support::{load, read_output, write_jsonl};
use rembed::{job, Prompt, Request};

fn max_diff(a: &[f32], b: ndarray::ArrayView1<f32>) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn each_row_is_what_embed_returns_for_the_records_text_with_the_document_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let texts: Vec<String> = (0..30)
        .map(|i| format!("record {i}: {}", "the quick fox ".repeat(i % 7)))
        .collect();
    // A decoy field that a job reading the wrong field would embed instead.
    let records: Vec<serde_json::Value> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| serde_json::json!({"id": format!("r{i}"), "body": text, "text": "decoy"}))
        .collect();
    write_jsonl(&input, &records);
    let output = dir.path().join("vectors");

    // bert-cls has a document prompt ("passage: ") and a query prompt ("query: ").
    let embedder = load("bert-cls");
    assert_eq!(
        embedder.resolve_prompt(&Prompt::Document).unwrap(),
        "passage: "
    );
    let config = job::Config::new(&input, &output)
        .with_text_field("body")
        .with_progress(false);
    let report = job::run(&embedder, &config).unwrap();
    assert!(report.all_embedded(), "{report}");

    let rows = read_output(&output);
    assert_eq!(rows.len(), texts.len());
    let documents = embedder.embed(&texts).unwrap();
    let queries = embedder.embed_queries(&texts).unwrap();
    let bare = embedder
        .embed_with(&texts, &Request::default().with_prompt(Prompt::None))
        .unwrap()
        .dense;
    let decoy = embedder.embed(&["decoy"]).unwrap();
    for i in 0..texts.len() {
        let got = &rows[&format!("r{i}")].vector;
        assert!(max_diff(got, documents.row(i)) <= 1e-5, "record {i}");
        assert!(
            max_diff(got, queries.row(i)) > 1e-3,
            "record {i} has the query prompt"
        );
        assert!(
            max_diff(got, bare.row(i)) > 1e-3,
            "record {i} has no prompt"
        );
        assert!(
            max_diff(got, decoy.row(0)) > 1e-3,
            "record {i} is the wrong field"
        );
    }
}
