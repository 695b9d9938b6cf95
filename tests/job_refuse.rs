//! An existing output is never mixed with vectors of another model, dimension, prompt, field or
//! shard layout: such a run is refused before it writes anything. A changed input is reported.
#![cfg(feature = "job")]

mod job_support;

use std::path::Path;

use job_support::{load, read_output, write_corpus};
use rembed::job::{self, Manifest, Shard};

fn config(input: &Path, output: &Path) -> job::Config {
    job::Config::new(input, output)
        .with_checkpoint_every(300)
        .with_progress(false)
}

/// The names and contents of every file in `dir`, to show a refused run changed nothing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".lock")
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Rewrites one field of the manifest's model provenance, as an earlier run with another
/// setting would have left it.
fn edit_model(output: &Path, field: &str, value: serde_json::Value) {
    let path = output.join(Manifest::file_name(Shard::ALL));
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manifest["model"][field] = value;
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
}

fn assert_mismatch(result: Result<job::Report, job::Error>, want: &str) {
    match result {
        Err(job::Error::ModelMismatch { field, .. }) if field == want => {}
        Err(other) => panic!("expected a {want} mismatch, got: {other}"),
        Ok(report) => panic!("expected a {want} mismatch, the run went on: {report}"),
    }
}

#[test]
fn another_model_dimension_prompt_or_field_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    write_corpus(&input, 1000, 7);
    let output = dir.path().join("out");
    let mean = load("bert-mean");
    let first = job::run(&mean, &config(&input, &output)).unwrap();
    assert!(first.balanced(), "{first}");
    let before = snapshot(&output);

    // bert-cls: another model (20-dimensional, with a "passage: " prompt).
    let error = job::run(&load("bert-cls"), &config(&input, &output)).unwrap_err();
    assert!(
        matches!(&error, job::Error::ModelMismatch { field: "model", .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("refusing to mix vector spaces"),
        "{message}"
    );
    assert_eq!(
        snapshot(&output),
        before,
        "a refused run changed the output"
    );

    // An output written at another dimension or with another prompt (as a Matryoshka model
    // at --dim 18 or a model whose prompt changed would have left it).
    edit_model(&output, "dim", 18.into());
    assert_mismatch(job::run(&mean, &config(&input, &output)), "dim");
    edit_model(&output, "dim", 36.into());
    edit_model(&output, "prompt", "query: ".into());
    assert_mismatch(job::run(&mean, &config(&input, &output)), "prompt");
    edit_model(&output, "prompt", "".into());

    // The same ids standing for other texts.
    let other_text = config(&input, &output).with_text_field("lang");
    assert_mismatch(job::run(&mean, &other_text), "text field");

    // The restored manifest is accepted again, and nothing is re-embedded.
    let again = job::run(&mean, &config(&input, &output)).unwrap();
    assert_eq!(again.counts.resumed, first.counts.embedded, "{again}");
    assert_eq!(again.counts.embedded, first.counts.embedded);
}

#[test]
fn another_shard_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    write_corpus(&input, 300, 8);
    let output = dir.path().join("out");
    let mean = load("bert-mean");
    job::run(&mean, &config(&input, &output)).unwrap();
    let sharded = config(&input, &output).with_shard(Shard::new(0, 2).unwrap());
    let error = job::run(&mean, &sharded).unwrap_err();
    assert!(matches!(error, job::Error::ShardLayout { .. }), "{error}");
}

#[test]
fn a_changed_input_is_reported_and_only_new_ids_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    write_corpus(&input, 500, 9);
    let output = dir.path().join("out");
    let mean = load("bert-mean");
    let first = job::run(&mean, &config(&input, &output)).unwrap();
    assert_eq!(first.input_changed, None);

    // Rows inserted at the top shift every line: resuming by position would skip these.
    let old = std::fs::read_to_string(&input).unwrap();
    let new_rows: String = (0..25)
        .map(|i| format!("{{\"id\": \"new-{i}\", \"text\": \"inserted later {i}\"}}\n"))
        .collect();
    std::fs::write(&input, format!("{new_rows}{old}")).unwrap();
    let second = job::run(&mean, &config(&input, &output)).unwrap();
    let change = second.input_changed.clone().expect("change not reported");
    assert!(change.contains("size"), "{change}");
    assert_eq!(second.counts.resumed, first.counts.embedded, "{second}");
    assert_eq!(
        second.counts.embedded,
        first.counts.embedded + 25,
        "{second}"
    );
    assert!(second.balanced(), "{second}");
    let rows = read_output(&output);
    assert!((0..25).all(|i| rows.contains_key(&format!("new-{i}"))));
    let manifest = Manifest::read(&second.manifest).unwrap();
    assert_eq!(manifest.input_changed.as_deref(), Some(change.as_str()));
}
