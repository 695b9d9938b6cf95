//! Helpers shared by the integration tests: fixture paths, reference files, vector comparison.
#![allow(dead_code)]

use std::path::PathBuf;

use ndarray::{Array2, ArrayView1};
use serde::Deserialize;

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Token ids and embeddings that sentence-transformers produced for one role.
#[derive(Deserialize)]
pub struct Encoded {
    pub ids: Vec<Vec<u32>>,
    pub embeddings: Vec<Vec<f32>>,
}

/// A reference file written by `tests/fixtures/generate.py`.
#[derive(Deserialize)]
pub struct Reference {
    pub texts: Vec<String>,
    pub documents: Encoded,
    pub queries: Encoded,
}

pub fn reference(path: PathBuf) -> Reference {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn cosine(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f32 {
    let dot = a.dot(&b);
    let norms = a.dot(&a).sqrt() * b.dot(&b).sqrt();
    if norms == 0.0 {
        if a == b {
            1.0
        } else {
            0.0
        }
    } else {
        dot / norms
    }
}

/// Asserts every row matches: cosine >= `min_cos`, max abs diff <= `max_diff`, all finite.
pub fn assert_rows_close(
    label: &str,
    got: &Array2<f32>,
    want: &[Vec<f32>],
    min_cos: f32,
    max_diff: f32,
) {
    assert_eq!(got.nrows(), want.len(), "{label}: row count");
    for (i, want) in want.iter().enumerate() {
        let want = ArrayView1::from(want);
        let row = got.row(i);
        assert_eq!(row.len(), want.len(), "{label}: row {i} dim");
        assert!(
            row.iter().all(|v| v.is_finite()),
            "{label}: row {i} not finite"
        );
        let cos = cosine(row, want);
        let diff = row
            .iter()
            .zip(want.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(cos >= min_cos, "{label}: row {i} cosine {cos}");
        assert!(diff <= max_diff, "{label}: row {i} max abs diff {diff}");
    }
}

/// Asserts two embedding matrices agree row by row (batch invariance).
pub fn assert_same_rows(label: &str, a: &Array2<f32>, b: &Array2<f32>, min_cos: f32) {
    assert_eq!(a.dim(), b.dim(), "{label}: shapes");
    for i in 0..a.nrows() {
        let cos = cosine(a.row(i), b.row(i));
        assert!(cos >= min_cos, "{label}: row {i} cosine {cos}");
    }
}

/// Token ids as rembed's tokenizer produces them, with the model's truncation.
pub fn ids(embedder: &rembed::Embedder, texts: &[String], prompt: &str) -> Vec<Vec<u32>> {
    texts
        .iter()
        .map(|t| {
            embedder
                .tokenizer()
                .encode(format!("{prompt}{t}"), true)
                .unwrap()
                .get_ids()
                .to_vec()
        })
        .collect()
}
