//! Loading and bad input: registry names, the hub cache layout, clear errors.

mod common;

use common::{copy_dir, fixture};
use rembed::{Device, Embedder, Error, Options};

fn cpu() -> Options {
    Options::default().with_device(Device::Cpu)
}

#[test]
fn no_texts_give_an_empty_matrix_with_the_right_width() {
    let embedder = Embedder::load(fixture("bert-mean").to_str().unwrap(), cpu()).unwrap();
    let none: [&str; 0] = [];
    let out = embedder.embed(&none).unwrap();
    assert_eq!(out.dim(), (0, embedder.dim()));
}

#[test]
fn unsupported_dimension_names_the_supported_ones() {
    let err =
        Embedder::load(fixture("bert-mean").to_str().unwrap(), cpu().with_dim(12)).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedDimension { requested: 12, supported, .. } if supported == "36"),
        "{err}"
    );
}

#[test]
fn unknown_model_lists_close_matches() {
    let err = Embedder::load("bge-smal-en", cpu()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("bge-small-en-v1.5"), "{text}");
}

#[test]
fn missing_and_malformed_files_name_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    copy_dir(&fixture("bert-mean"), &dir);

    std::fs::write(dir.join("config.json"), "{ not json").unwrap();
    let err = Embedder::load(dir.to_str().unwrap(), cpu()).unwrap_err();
    assert!(
        matches!(err, Error::Malformed { ref path, .. } if path.ends_with("config.json")),
        "{err}"
    );

    copy_dir(&fixture("bert-mean"), &dir);
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let err = Embedder::load(dir.to_str().unwrap(), cpu()).unwrap_err();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");

    copy_dir(&fixture("bert-mean"), &dir);
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("pytorch_model.bin"), b"pickle").unwrap();
    let err = Embedder::load(dir.to_str().unwrap(), cpu()).unwrap_err();
    assert!(matches!(err, Error::PickleWeights { .. }), "{err}");

    std::fs::write(dir.join("model.safetensors"), b"truncated").unwrap();
    let err = Embedder::load(dir.to_str().unwrap(), cpu()).unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn registry_model_loads_from_a_hub_cache_and_directory_settings_win() {
    // A user registry entry pointing at a repo that exists only in a local hub cache.
    let tmp = tempfile::tempdir().unwrap();
    let commit = "1111111111111111111111111111111111111111";
    let repo = tmp.path().join("hub/models--acme--tiny-bert");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    copy_dir(&fixture("bert-cls"), &repo.join("snapshots").join(commit));
    let registry = tmp.path().join("models.toml");
    std::fs::write(
        &registry,
        r#"[[model]]
name = "tiny"
aliases = ["tiny:latest"]
repo = "acme/tiny-bert"
architecture = "bert"
pooling = "mean"
normalize = true
dim = 20
max_length = 10
query_prompt = "registry query: "
"#,
    )
    .unwrap();
    let options = cpu()
        .with_registry_file(&registry)
        .with_cache_dir(tmp.path().join("hub"))
        .with_offline(true);
    let embedder = Embedder::load("tiny:latest", options.clone()).unwrap();
    let spec = embedder.spec();
    assert_eq!(spec.name, "tiny");
    // The directory's own files (CLS pooling, no Normalize, 64 tokens, its prompts) override.
    assert_eq!(spec.pooling, rembed::Pooling::Cls);
    assert!(!spec.normalize);
    assert_eq!(spec.max_length, 64);
    assert_eq!(spec.query_prompt, "query: ");

    let reference = common::reference(fixture("bert-cls/reference.json"));
    let docs = embedder.embed(&reference.texts).unwrap();
    common::assert_rows_close(
        "hub cache",
        &docs,
        &reference.documents.embeddings,
        0.99999,
        1e-4,
    );

    // A pinned commit resolves straight to its snapshot; an uncached one is named as such.
    let pinned = Embedder::load("tiny", options.clone().with_revision(commit)).unwrap();
    assert_eq!(pinned.spec().revision, commit);
    assert_eq!(pinned.embed(&reference.texts).unwrap(), docs);
    let err = Embedder::load("tiny", options.with_revision("v2")).unwrap_err();
    assert!(
        matches!(&err, Error::Hub { reason, .. } if reason.contains("not in the local cache")),
        "{err}"
    );
}

#[test]
fn options_override_normalization_and_prompts() {
    let dir = fixture("bert-cls");
    let reference = common::reference(dir.join("reference.json"));
    let plain = Embedder::load(
        dir.to_str().unwrap(),
        cpu().with_prompts(false).with_normalize(true),
    )
    .unwrap();
    let docs = plain.embed(&reference.texts[..3]).unwrap();
    for row in docs.rows() {
        assert!((row.dot(&row).sqrt() - 1.0).abs() < 1e-5);
    }
    // Without prompts, documents and queries are the same vectors.
    let queries = plain.embed_queries(&reference.texts[..3]).unwrap();
    assert_eq!(docs, queries);
}

#[test]
fn max_length_beyond_the_position_table_is_refused() {
    let err = Embedder::load(
        fixture("bert-mean").to_str().unwrap(),
        cpu().with_max_length(1000),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "max_length",
                ..
            }
        ),
        "{err}"
    );
    let short = Embedder::load(
        fixture("bert-mean").to_str().unwrap(),
        cpu().with_max_length(5),
    )
    .unwrap();
    let out = short
        .embed_with(
            &["one two three four five six seven"],
            &rembed::Request::default(),
        )
        .unwrap();
    assert_eq!((out.truncated, out.tokens), (1, 5));
}

#[test]
fn truncation_is_counted_whatever_the_tokenizer_template() {
    let long = "word ".repeat(200);
    let texts = [long.as_str(), "short", "   "];
    // With special tokens (BERT), and without any (a Qwen3 tokenizer lacking its template).
    for (name, max_length) in [("bert-mean", 8), ("qwen3-no-template", 8)] {
        let embedder = Embedder::load(
            fixture(name).to_str().unwrap(),
            cpu().with_max_length(max_length),
        )
        .unwrap();
        let out = embedder
            .embed_with(&texts, &rembed::Request::default())
            .unwrap();
        assert_eq!(out.truncated, 1, "{name}");
    }
}

#[test]
fn inputs_ending_in_control_characters_are_not_counted_as_truncated() {
    let embedder = Embedder::load(fixture("bert-mean").to_str().unwrap(), cpu()).unwrap();
    let out = embedder
        .embed_with(
            &["hello world\0", "tab\t\0\0", "x\u{7}"],
            &rembed::Request::default(),
        )
        .unwrap();
    assert_eq!(out.truncated, 0);
}

#[test]
fn a_max_length_with_no_room_for_text_is_refused() {
    let dir = fixture("bert-mean");
    let err = Embedder::load(dir.to_str().unwrap(), cpu().with_max_length(2)).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidOption { option: "max_length", reason }
            if reason.contains("2 special tokens")),
        "{err}"
    );
    let three = Embedder::load(dir.to_str().unwrap(), cpu().with_max_length(3)).unwrap();
    let out = three
        .embed_with(&["one two three"], &rembed::Request::default())
        .unwrap();
    assert_eq!((out.tokens, out.truncated), (3, 1));
}

/// A scratch copy of a fixture whose `config.json` is rewritten by `edit`.
fn with_config(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&fixture(name), tmp.path());
    let path = tmp.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, config.to_string()).unwrap();
    tmp
}

#[test]
fn zero_or_non_dividing_heads_are_refused_naming_the_config() {
    for (heads, says) in [
        (0, "attention heads is 0"),
        (7, "7 attention heads do not divide"),
    ] {
        let tmp = with_config("bert-mean", |c| c["num_attention_heads"] = heads.into());
        let err = Embedder::load(tmp.path().to_str().unwrap(), cpu()).unwrap_err();
        assert!(
            matches!(&err, Error::Malformed { path, reason }
                if path.ends_with("config.json") && reason.contains(says)),
            "{err}"
        );
    }
}

#[test]
fn a_config_with_a_byte_order_mark_loads() {
    let tmp = with_config("bert-mean", |_| {});
    let path = tmp.path().join("config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("\u{feff}{text}")).unwrap();
    let with_bom = Embedder::load(tmp.path().to_str().unwrap(), cpu()).unwrap();
    let plain = Embedder::load(fixture("bert-mean").to_str().unwrap(), cpu()).unwrap();
    assert_eq!(
        with_bom.embed(&["hello"]).unwrap(),
        plain.embed(&["hello"]).unwrap()
    );
}
