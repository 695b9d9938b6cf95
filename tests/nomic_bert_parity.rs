//! NomicBert (nomic-embed-text v1 / v1.5) against transformers' NomicBert on a tiny random-weight
//! model in v1.5's shape, with a trained length short enough that several texts go past it and
//! get dynamic NTK rotary scaling, computed per text.

mod common;

use common::{assert_rows_close, fixture, ids, registered_fixture};
use rembed::{Device, Embedder, Options, Prompt, Request};
use serde::Deserialize;

#[derive(Deserialize)]
struct Encoded {
    ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
    matryoshka: Vec<Vec<f32>>,
}

/// `nomic-bert/reference.json`: each role's ids, vectors and Matryoshka vectors (v1.5 recipe).
#[derive(Deserialize)]
struct Reference {
    texts: Vec<String>,
    max_trained_positions: usize,
    matryoshka_dim: usize,
    documents: Encoded,
    queries: Encoded,
    clustering: Encoded,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(fixture("nomic-bert/reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load() -> Embedder {
    Embedder::load(
        fixture("nomic-bert").to_str().unwrap(),
        Options::default().with_device(Device::Cpu),
    )
    .unwrap()
}

#[test]
fn documents_queries_and_task_prefixes_match_the_reference() {
    let reference = reference();
    let embedder = load();
    assert_eq!(embedder.spec().document_prompt, "search_document: ");
    assert_eq!(embedder.spec().query_prompt, "search_query: ");
    // Several inputs run past the trained positions: the NTK path is exercised.
    let long = reference
        .documents
        .ids
        .iter()
        .filter(|ids| ids.len() > reference.max_trained_positions)
        .count();
    assert!(long >= 3, "{long}");

    let docs_ids = embedder
        .tokenize(&reference.texts, &Request::documents())
        .unwrap();
    assert_eq!(docs_ids, reference.documents.ids);
    let query_ids = embedder
        .tokenize(&reference.texts, &Request::queries())
        .unwrap();
    assert_eq!(query_ids, reference.queries.ids);
    assert_eq!(
        ids(&embedder, &reference.texts, "clustering: "),
        reference.clustering.ids
    );

    let docs = embedder.embed(&reference.texts).unwrap();
    assert_rows_close(
        "nomic documents",
        &docs,
        &reference.documents.embeddings,
        0.99999,
        1e-4,
    );
    let queries = embedder.embed_queries(&reference.texts).unwrap();
    assert_rows_close(
        "nomic queries",
        &queries,
        &reference.queries.embeddings,
        0.99999,
        1e-4,
    );
    let clustering = embedder
        .embed_with(
            &reference.texts,
            &Request::default().with_prompt(Prompt::Text("clustering: ".into())),
        )
        .map(|e| e.dense)
        .unwrap();
    assert_rows_close(
        "nomic clustering",
        &clustering,
        &reference.clustering.embeddings,
        0.99999,
        1e-4,
    );
}

#[test]
fn every_text_in_a_batch_equals_the_text_alone_long_ones_included() {
    // Long texts beside short ones, in batches of every size the budget allows.
    let texts = reference().texts;
    common::assert_batch_invariant("nomic", &fixture("nomic-bert"), &texts, 100);
}

#[test]
fn v1_5_matryoshka_applies_the_layer_norm_before_truncating() {
    let reference = reference();
    let entry = format!(
        r#"name = "tiny-nomic-v1.5"
architecture = "nomic-bert"
pooling = "mean"
normalize = true
dim = 36
matryoshka_dims = [{}]
matryoshka_layer_norm = true
max_length = 48"#,
        reference.matryoshka_dim
    );
    let (_tmp, options) = registered_fixture("nomic-bert", "acme/tiny-nomic", &entry);

    let small = Embedder::load(
        "tiny-nomic-v1.5",
        options.clone().with_dim(reference.matryoshka_dim),
    )
    .unwrap();
    let docs = small.embed(&reference.texts).unwrap();
    assert_rows_close(
        "nomic matryoshka documents",
        &docs,
        &reference.documents.matryoshka,
        0.99999,
        1e-4,
    );
    let queries = small.embed_queries(&reference.texts).unwrap();
    assert_rows_close(
        "nomic matryoshka queries",
        &queries,
        &reference.queries.matryoshka,
        0.99999,
        1e-4,
    );

    // At the full dimension the model's own pipeline applies: no layer norm.
    let full = Embedder::load("tiny-nomic-v1.5", options).unwrap();
    assert_rows_close(
        "nomic full dimension",
        &full.embed(&reference.texts).unwrap(),
        &reference.documents.embeddings,
        0.99999,
        1e-4,
    );
}

/// The dtype CUDA runs by default: rotary and pooling in f32 keep it close to the reference.
#[test]
fn bf16_stays_close_to_the_reference() {
    let reference = reference();
    let embedder = Embedder::load(
        fixture("nomic-bert").to_str().unwrap(),
        Options::default()
            .with_device(Device::Cpu)
            .with_precision(rembed::Precision::BF16),
    )
    .unwrap();
    let docs = embedder.embed(&reference.texts).unwrap();
    // Twice the worst measured on the CPU (2026-12-01: 1-cos 9.5e-5, max diff 0.006).
    assert_rows_close(
        "nomic bf16",
        &docs,
        &reference.documents.embeddings,
        1.0 - 2e-4,
        0.012,
    );
}
