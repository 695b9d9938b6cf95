//! An existing output is never mixed with vectors of another model, dimension, prompt, field or
//! shard layout: such a run is refused before it writes anything, even when two runs start at
//! the same moment. The model is known by its weights, not its path. A changed input is
//! reported, and a text field that the records lack is refused.
#![cfg(feature = "job")]

mod job_support;

use std::path::Path;

use job_support::{copy_model, load, load_dir, read_output, rewrite_weights, write_corpus};
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

#[test]
fn a_text_field_the_records_lack_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    write_corpus(&input, 300, 12);
    let output = dir.path().join("out");
    // `body` is a typo: every record has `text`.
    let typo = config(&input, &output).with_text_field("body");
    let error = job::run(&load("bert-mean"), &typo).unwrap_err();
    assert!(
        matches!(&error, job::Error::TextFieldMissing { present: 0, .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("`body`") && message.contains("text"),
        "{message}"
    );
    let written: Vec<_> = std::fs::read_dir(&output)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with(".lock"))
        .collect();
    assert!(written.is_empty(), "a refused run wrote {written:?}");
}

/// An unsharded run and `--shard 0/2` started at the same moment on one directory: before the
/// layout was claimed under a lock, both found it empty and both went on (1 start in 4).
#[test]
fn concurrent_starts_with_two_layouts_never_both_proceed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    write_corpus(&input, 60, 13);
    let embedder = load("bert-mean");
    for round in 0..24 {
        let output = dir.path().join(format!("out-{round}"));
        let barrier = std::sync::Barrier::new(2);
        let shards = [Shard::ALL, Shard::new(0, 2).unwrap()];
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = shards
                .iter()
                .map(|&shard| {
                    let (barrier, embedder) = (&barrier, &embedder);
                    let config = config(&input, &output).with_shard(shard);
                    scope.spawn(move || {
                        barrier.wait();
                        job::run(embedder, &config)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "round {round}: {ok} runs proceeded");
        for result in &results {
            if let Err(error) = result {
                assert!(
                    matches!(error, job::Error::ShardLayout { .. }),
                    "round {round}: {error}"
                );
            }
        }
        let check = job::verify(&output, None).unwrap();
        assert_eq!(check.duplicate_ids, 0, "round {round}: {check}");
    }
}

#[test]
fn same_weights_elsewhere_resume_and_new_weights_at_the_same_path_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    write_corpus(&input, 400, 14);
    let output = dir.path().join("out");
    let first_path = copy_model("bert-mean", &dir.path().join("model-a"));
    let run = |model: &Path| {
        let config = config(&input, &output).with_model_source(model.to_string_lossy());
        job::run(&load_dir(model), &config)
    };
    let first = run(&first_path).unwrap();
    let manifest = Manifest::read(&first.manifest).unwrap();
    let digest = manifest
        .model
        .identity
        .weights_sha256
        .clone()
        .expect("no digest");
    assert_eq!(digest.len(), 64);
    assert!(manifest.model.identity.config_sha256.is_some());

    // The same files under another path: the same model, so the run resumes.
    let moved = copy_model("bert-mean", &dir.path().join("model-b"));
    let again = run(&moved).unwrap();
    assert_eq!(again.counts.resumed, first.counts.embedded, "{again}");

    // Back at the first path, then other weights saved over it: refused, though the path is
    // the one the manifest names.
    run(&first_path).unwrap();
    rewrite_weights(&first_path, |name, _, values| {
        if name.ends_with("word_embeddings.weight") {
            values.iter_mut().for_each(|v| *v *= 1.5);
        }
    });
    let before = snapshot(&output);
    assert_mismatch(run(&first_path), "weights");
    assert_eq!(
        snapshot(&output),
        before,
        "a refused run changed the output"
    );
}

/// A GGUF model is its file: a copy elsewhere resumes, another file saved over the path (here
/// the same network in F16 instead of F32) is refused as other weights.
#[test]
fn a_gguf_file_is_known_by_its_digest_not_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    write_corpus(&input, 200, 15);
    let output = dir.path().join("out");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf");
    let first_path = dir.path().join("a/model.gguf");
    let moved = dir.path().join("b/model.gguf");
    for path in [&first_path, &moved] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(fixtures.join("qwen3-narrow-f32.gguf"), path).unwrap();
    }
    let run = |model: &Path| {
        let config = config(&input, &output).with_model_source(model.to_string_lossy());
        job::run(&load_dir(model), &config)
    };
    let first = run(&first_path).unwrap();
    let manifest = Manifest::read(&first.manifest).unwrap();
    let digest = manifest.model.identity.weights_sha256.clone();
    assert_eq!(digest.as_deref().map(str::len), Some(64), "{digest:?}");

    let again = run(&moved).unwrap();
    assert_eq!(again.counts.resumed, first.counts.embedded, "{again}");

    // Back at the first path, then another file saved over it.
    run(&first_path).unwrap();
    std::fs::copy(fixtures.join("qwen3-narrow-f16.gguf"), &first_path).unwrap();
    let before = snapshot(&output);
    assert_mismatch(run(&first_path), "weights");
    assert_eq!(
        snapshot(&output),
        before,
        "a refused run changed the output"
    );
}

/// A registry model is identified through the hub cache (scripts/test.sh seeds it): its
/// snapshot's commit and digests; a copy of the snapshot elsewhere is the same model.
#[test]
fn a_hub_model_and_a_copy_of_its_snapshot_are_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    write_corpus(&input, 60, 15);
    let output = dir.path().join("out");
    let name = "all-minilm-l6-v2";
    let cpu = || rembed::Options::default().with_device(rembed::Device::Cpu);
    let hub = rembed::Embedder::load(name, cpu()).unwrap_or_else(|e| {
        panic!("{name}: {e} (run through scripts/test.sh, which seeds the hub cache)")
    });
    let first = job::run(&hub, &config(&input, &output).with_model_source(name)).unwrap();
    let identity = Manifest::read(&first.manifest).unwrap().model.identity;
    let commit = identity.commit.expect("no commit");
    assert_eq!(commit.len(), 40);
    let snapshot = identity.files.expect("no files");
    assert!(snapshot.ends_with(&commit), "{}", snapshot.display());

    // The snapshot's files (links followed) copied to a folder of their own.
    let copy = dir.path().join("copy");
    for entry in std::fs::read_dir(&snapshot).unwrap() {
        let path = entry.unwrap().path();
        let target = copy.join(path.file_name().unwrap());
        if path.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            for inner in std::fs::read_dir(&path).unwrap() {
                let inner = inner.unwrap().path();
                std::fs::copy(&inner, target.join(inner.file_name().unwrap())).unwrap();
            }
        } else {
            std::fs::create_dir_all(&copy).unwrap();
            std::fs::copy(&path, &target).unwrap();
        }
    }
    let again = job::run(
        &load_dir(&copy),
        &config(&input, &output).with_model_source(copy.to_string_lossy()),
    )
    .unwrap();
    assert_eq!(again.counts.resumed, first.counts.embedded, "{again}");
}
