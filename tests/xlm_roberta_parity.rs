//! XLM-RoBERTa in bge-m3's shape (dense CLS vectors, sparse lexical weights, ColBERT vectors)
//! against a tiny random-weight model: transformers on tokenizer.json's ids, FlagEmbedding's
//! formulas for the sparse and ColBERT heads, and sentence-transformers where its tokenizer agrees.

mod common;

use common::{assert_rows_close, assert_same_rows, cosine, fixture, one_at_a_time};
use ndarray::{Array2, ArrayView1};
use rembed::{Device, Embedder, Error, Options, Request};
use serde::Deserialize;

#[derive(Deserialize)]
struct Encoded {
    ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct Sparse {
    ids: Vec<u32>,
    weights: Vec<f32>,
}

/// `xlm-roberta-m3/reference.json`.
#[derive(Deserialize)]
struct Reference {
    texts: Vec<String>,
    /// From tokenizer.json's ids: what rembed must give for every text.
    documents: Encoded,
    /// sentence-transformers' own ids and vectors; its tokenizer differs on some texts.
    sentence_transformers: Encoded,
    sparse: Vec<Sparse>,
    colbert: Vec<Vec<Vec<f32>>>,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(fixture("xlm-roberta-m3/reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load(dir: &std::path::Path) -> rembed::Result<Embedder> {
    Embedder::load(
        dir.to_str().unwrap(),
        Options::default().with_device(Device::Cpu),
    )
}

#[test]
fn dense_vectors_match_transformers_on_tokenizer_json_ids() {
    let reference = reference();
    let embedder = load(&fixture("xlm-roberta-m3")).unwrap();
    // 34 positions, the first two reserved: 32 tokens at most.
    assert_eq!(embedder.spec().max_length, 32);
    assert_eq!(
        embedder
            .tokenize(&reference.texts, &Request::documents())
            .unwrap(),
        reference.documents.ids
    );
    let docs = embedder.embed(&reference.texts).unwrap();
    assert_rows_close(
        "xlm-r documents",
        &docs,
        &reference.documents.embeddings,
        0.99999,
        1e-4,
    );
}

#[test]
fn dense_vectors_match_sentence_transformers_where_its_tokenizer_agrees() {
    let reference = reference();
    let embedder = load(&fixture("xlm-roberta-m3")).unwrap();
    let docs = embedder.embed(&reference.texts).unwrap();
    let st = &reference.sentence_transformers;
    let (same, differ): (Vec<usize>, Vec<usize>) =
        (0..reference.texts.len()).partition(|&i| st.ids[i] == reference.documents.ids[i]);
    // transformers 5 drops whitespace pieces (trailing spaces, spaces before special tokens).
    assert!(!differ.is_empty());
    for &i in &differ {
        let text = &reference.texts[i];
        assert!(
            text.ends_with(' ') || text.contains(" <") || text.trim().is_empty(),
            "{text:?}"
        );
    }
    let got = docs.select(ndarray::Axis(0), &same);
    let want: Vec<Vec<f32>> = same.iter().map(|&i| st.embeddings[i].clone()).collect();
    assert_rows_close("xlm-r vs sentence-transformers", &got, &want, 0.99999, 1e-4);
}

/// All three bge-m3 outputs of one call.
#[derive(Debug)]
struct All {
    dense: Array2<f32>,
    sparse: Vec<rembed::SparseEmbedding>,
    colbert: Vec<Array2<f32>>,
}

fn embed_all<S: AsRef<str> + Sync>(embedder: &Embedder, texts: &[S]) -> rembed::Result<All> {
    let request = Request::default().with_sparse(true).with_colbert(true);
    let out = embedder.embed_with(texts, &request)?;
    let (sparse, colbert) = (
        out.sparse.expect("asked for"),
        out.colbert.expect("asked for"),
    );
    assert_eq!((sparse.len(), colbert.len()), (texts.len(), texts.len()));
    Ok(All {
        dense: out.dense,
        sparse,
        colbert,
    })
}

#[test]
fn sparse_and_colbert_outputs_follow_flag_embedding() {
    let reference = reference();
    let embedder = load(&fixture("xlm-roberta-m3")).unwrap();
    let all = embed_all(&embedder, &reference.texts).unwrap();
    assert_eq!(all.dense, embedder.embed(&reference.texts).unwrap());

    assert_eq!(all.sparse.len(), reference.sparse.len());
    for (i, (got, want)) in all.sparse.iter().zip(&reference.sparse).enumerate() {
        assert_eq!(got.indices, want.ids, "sparse ids of text {i}");
        assert_eq!(
            got.values.len(),
            want.weights.len(),
            "sparse weights of text {i}"
        );
        for (a, b) in got.values.iter().zip(&want.weights) {
            assert!(
                (a - b).abs() <= 1e-4,
                "sparse weight of text {i}: {a} vs {b}"
            );
        }
    }
    // Special and unknown tokens never carry weight; some texts have none left at all.
    assert!(all.sparse.iter().any(|s| s.indices.is_empty()));

    assert_eq!(all.colbert.len(), reference.colbert.len());
    for (i, (got, want)) in all.colbert.iter().zip(&reference.colbert).enumerate() {
        assert_eq!(got.nrows(), want.len(), "colbert rows of text {i}");
        assert_eq!(got.nrows(), reference.documents.ids[i].len() - 1);
        for (row, want) in got.rows().into_iter().zip(want) {
            let want = ArrayView1::from(want);
            assert!(cosine(row, want) >= 0.99999, "colbert text {i}");
            let diff = common::max_abs_diff(row, want);
            assert!(diff <= 1e-4, "colbert text {i}: {diff}");
            assert!((row.dot(&row).sqrt() - 1.0).abs() < 1e-5);
        }
    }
}

#[test]
fn every_text_in_a_batch_equals_the_text_alone() {
    let reference = reference();
    let embedder = load(&fixture("xlm-roberta-m3")).unwrap();
    let alone = one_at_a_time(&embedder, &reference.texts);
    common::assert_batch_invariant("xlm-r", &fixture("xlm-roberta-m3"), &reference.texts, 40);

    // All three outputs, in many small batches, against each text alone.
    let small = Embedder::load(
        fixture("xlm-roberta-m3").to_str().unwrap(),
        Options::default()
            .with_device(Device::Cpu)
            .with_max_batch_tokens(40),
    )
    .unwrap();
    let batched = embed_all(&small, &reference.texts).unwrap();
    assert_same_rows("xlm-r small batches", &batched.dense, &alone, 0.99999);
    for (i, text) in reference.texts.iter().enumerate() {
        let one = embed_all(&embedder, std::slice::from_ref(text)).unwrap();
        assert_eq!(one.sparse[0].indices, batched.sparse[i].indices);
        let close = |a: &Array2<f32>, b: &Array2<f32>| {
            a.dim() == b.dim() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
        };
        assert!(close(&one.colbert[0], &batched.colbert[i]), "text {i}");
    }
}

#[test]
fn heads_that_were_not_converted_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m3");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture("xlm-roberta-m3")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            continue;
        }
        let name = entry.file_name();
        if name != "colbert_linear.safetensors" && name != "modules.json" {
            std::fs::copy(entry.path(), dir.join(name)).unwrap();
        }
    }
    std::fs::write(dir.join("colbert_linear.pt"), b"pickle").unwrap();
    let embedder = load(&dir).unwrap();
    // The dense path does not need the heads.
    assert_eq!(embedder.embed(&["hello"]).unwrap().nrows(), 1);
    let err = embed_all(&embedder, &["hello"]).unwrap_err();
    assert!(
        matches!(&err, Error::MissingHead { file, pickle, .. }
            if file == "colbert_linear.safetensors" && pickle == "colbert_linear.pt"),
        "{err}"
    );
}

/// The dtype CUDA runs by default; the sparse and ColBERT heads run in f32 on its hidden states.
#[test]
fn bf16_stays_close_to_the_reference() {
    let reference = reference();
    let embedder = Embedder::load(
        fixture("xlm-roberta-m3").to_str().unwrap(),
        Options::default()
            .with_device(Device::Cpu)
            .with_precision(rembed::Precision::BF16),
    )
    .unwrap();
    let all = embed_all(&embedder, &reference.texts).unwrap();
    // Twice the worst measured on the CPU (2026-12-01: 1-cos 9.6e-5, max diff 0.0083;
    // ColBERT rows 1-cos 3.0e-4).
    assert_rows_close(
        "xlm-r bf16",
        &all.dense,
        &reference.documents.embeddings,
        1.0 - 2e-4,
        0.017,
    );
    assert_eq!(all.colbert.len(), reference.colbert.len());
    for (got, want) in all.colbert.iter().zip(&reference.colbert) {
        assert_eq!(got.nrows(), want.len());
        for (row, want) in got.rows().into_iter().zip(want) {
            assert!(cosine(row, ArrayView1::from(want)) >= 1.0 - 6e-4);
        }
    }
}
