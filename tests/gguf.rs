//! GGUF models (Qwen3 and nomic-bert; F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) against
//! transformers run on the same weights dequantized to f32, with tokenizers rebuilt from the
//! files' metadata. Fixtures and references: `tests/fixtures/generate_gguf.py`.
//!
//! `cargo test --release --test gguf -- --nocapture` also prints each file's loss against the
//! original f32 weights (the table in BENCHMARKS.md).

mod common;

use common::{assert_rows_close, assert_same_rows, cosine, fixture, one_at_a_time};
use ndarray::ArrayView1;
use rembed::{Device, Embedder, Error, Options, Pooling, Precision, Request};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Reference {
    texts: Vec<String>,
    ids: Vec<Vec<u32>>,
    original: Vec<Vec<f32>>,
    files: BTreeMap<String, File>,
}

#[derive(Deserialize)]
struct File {
    #[serde(rename = "type")]
    kind: String,
    embeddings: Vec<Vec<f32>>,
}

fn reference(model: &str) -> Reference {
    let path = fixture(&format!("gguf/{model}/reference.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn cpu() -> Options {
    Options::default().with_device(Device::Cpu)
}

fn load(file: &str) -> Embedder {
    Embedder::load(fixture(&format!("gguf/{file}")).to_str().unwrap(), cpu()).unwrap()
}

/// The cosine each row must reach against the dequantized reference: F32/F16/BF16 weights run
/// dense in f32; block types also quantize the activations inside candle's kernels.
fn min_cos(kind: &str) -> f32 {
    match kind {
        "F32" | "F16" | "BF16" => 0.9999,
        _ => 0.999,
    }
}

/// Every file of `model`: token ids equal to its tokenizer.json's, vectors equal to the
/// reference, a batch equal to its texts embedded alone; prints the loss against the original.
fn check(model: &str, pooling: Pooling) {
    let reference = reference(model);
    assert!(!reference.files.is_empty());
    for (file, expected) in &reference.files {
        let embedder = load(file);
        let label = format!("{file} ({})", expected.kind);
        assert_eq!(embedder.spec().pooling, pooling, "{label}");
        assert_eq!(embedder.precision(), Precision::F32, "{label}");
        let ids = embedder
            .tokenize(&reference.texts, &Request::documents())
            .unwrap();
        for (i, (got, want)) in ids.iter().zip(&reference.ids).enumerate() {
            assert_eq!(
                got, want,
                "{label}: ids of text {i} {:?}",
                reference.texts[i]
            );
        }
        let batch = embedder.embed(&reference.texts).unwrap();
        assert_rows_close(
            &label,
            &batch,
            &expected.embeddings,
            min_cos(&expected.kind),
            1.0,
        );
        let alone = one_at_a_time(&embedder, &reference.texts);
        assert_same_rows(&format!("{label} batch"), &batch, &alone, 0.99999);

        let loss: Vec<f32> = reference
            .original
            .iter()
            .enumerate()
            .map(|(i, row)| 1.0 - cosine(batch.row(i), ArrayView1::from(row)))
            .collect();
        let worst = loss.iter().copied().fold(0.0f32, f32::max);
        let mean = loss.iter().sum::<f32>() / loss.len() as f32;
        println!(
            "{file:32} {:5}  1 - cos vs original f32: mean {mean:.2e}, worst {worst:.2e}",
            expected.kind
        );
    }
}

#[test]
fn qwen3_f32_f16_bf16_match_the_reference() {
    check("qwen3-narrow", Pooling::LastToken);
}

#[test]
fn qwen3_block_quantized_match_the_reference() {
    check("qwen3-wide", Pooling::LastToken);
}

#[test]
fn nomic_bert_f16_matches_the_reference() {
    check("nomic-bert-narrow", Pooling::Mean);
}

#[test]
fn nomic_bert_q4_k_matches_the_reference() {
    check("nomic-bert-wide", Pooling::Mean);
}

#[test]
fn metadata_sets_the_spec_and_precision_is_f32() {
    let embedder = load("qwen3-wide-q4_k.gguf");
    let spec = embedder.spec();
    assert_eq!(spec.dim, 256);
    assert_eq!(spec.max_length, 512);
    assert!(spec.normalize);
    // Qwen3's conventions: the end token, and task instructions in queries.
    assert_eq!(spec.end_token.as_deref(), Some("<|endoftext|>"));
    assert!(spec.query_template.is_some());

    let path = fixture("gguf/qwen3-wide-q4_k.gguf");
    let bf16 = Embedder::load(
        path.to_str().unwrap(),
        cpu().with_precision(Precision::BF16),
    );
    let err = bf16.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::InvalidOption {
                option: "precision",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_gguf_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, b"{\"not\": \"gguf\"}").unwrap();
    let err = Embedder::load(path.to_str().unwrap(), cpu()).unwrap_err();
    assert!(
        matches!(&err, Error::NotGguf { path: p, .. } if *p == path),
        "{err}"
    );

    // A GGUF file of an architecture rembed does not read from GGUF.
    let bert = dir.path().join("bert.gguf");
    let arch = candle_core::quantized::gguf_file::Value::String("bert".into());
    let mut out = std::fs::File::create(&bert).unwrap();
    candle_core::quantized::gguf_file::write(&mut out, &[("general.architecture", &arch)], &[])
        .unwrap();
    drop(out);
    let err = Embedder::load(bert.to_str().unwrap(), cpu()).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedArchitecture { architecture, supported, .. }
            if architecture == "bert" && supported.contains("qwen3")),
        "{err}"
    );

    let truncated = dir.path().join("truncated.gguf");
    let bytes = std::fs::read(fixture("gguf/qwen3-narrow-f16.gguf")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = Embedder::load(truncated.to_str().unwrap(), cpu()).unwrap_err();
    assert!(err.to_string().contains("truncated.gguf"), "{err}");
}
