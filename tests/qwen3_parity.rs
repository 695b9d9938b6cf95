//! Qwen3 (Qwen3-Embedding) against sentence-transformers on a tiny random-weight model with
//! grouped-query attention and a head size that is not hidden / heads.

mod common;

use common::{
    assert_rows_close, assert_same_rows, fixture, ids, one_at_a_time, reference,
    registered_fixture, CapturedLog,
};
use rembed::{Device, Embedder, Error, Options, Prompt, Request};
use serde::Deserialize;

/// The parts of `qwen3/reference.json` beyond the common documents / queries.
#[derive(Deserialize)]
struct Extra {
    custom_task: CustomTask,
    matryoshka: Matryoshka,
}

#[derive(Deserialize)]
struct CustomTask {
    task: String,
    ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct Matryoshka {
    dim: usize,
    documents: Vec<Vec<f32>>,
}

fn extra() -> Extra {
    let text = std::fs::read_to_string(fixture("qwen3/reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load(name: &str) -> Embedder {
    Embedder::load(
        fixture(name).to_str().unwrap(),
        Options::default().with_device(Device::Cpu),
    )
    .unwrap()
}

#[test]
fn documents_and_queries_match_sentence_transformers() {
    let reference = reference(fixture("qwen3/reference.json"));
    let embedder = load("qwen3");
    let spec = embedder.spec();
    assert!(spec.query_prompt.starts_with("Instruct: ") && spec.query_prompt.ends_with("\nQuery:"));
    assert_eq!(spec.document_prompt, "");

    assert_eq!(
        embedder
            .tokenize(&reference.texts, &Request::documents())
            .unwrap(),
        reference.documents.ids
    );
    assert_eq!(
        embedder
            .tokenize(&reference.texts, &Request::queries())
            .unwrap(),
        reference.queries.ids
    );
    let docs = embedder.embed(&reference.texts).unwrap();
    assert_rows_close(
        "qwen3 documents",
        &docs,
        &reference.documents.embeddings,
        0.99999,
        1e-4,
    );
    let queries = embedder.embed_queries(&reference.texts).unwrap();
    assert_rows_close(
        "qwen3 queries",
        &queries,
        &reference.queries.embeddings,
        0.99999,
        1e-4,
    );
}

#[test]
fn a_task_of_your_own_goes_into_the_instruction() {
    let reference = reference(fixture("qwen3/reference.json"));
    let custom = extra().custom_task;
    let embedder = load("qwen3");
    let prompt = format!("Instruct: {}\nQuery:", custom.task);
    assert_eq!(ids(&embedder, &reference.texts, &prompt), custom.ids);
    let queries = embedder
        .embed_with(
            &reference.texts,
            &Request::default().with_prompt(Prompt::Task(custom.task.clone())),
        )
        .map(|e| e.dense)
        .unwrap();
    assert_rows_close(
        "qwen3 custom task",
        &queries,
        &custom.embeddings,
        0.99999,
        1e-4,
    );

    // A model without an instruction template says so instead of guessing a format.
    let err = load("bert-mean")
        .embed_with(
            &["x"],
            &Request::default().with_prompt(Prompt::Task("anything".into())),
        )
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedTask { .. }), "{err}");
}

#[test]
fn a_tokenizer_without_the_end_token_template_gets_it_appended_with_a_warning() {
    let reference = reference(fixture("qwen3/reference.json"));
    let log = CapturedLog::default();
    let embedder = log.capture(|| load("qwen3-no-template"));
    let warning = log.text();
    assert!(
        warning.contains("WARN") && warning.contains("<|endoftext|>"),
        "{warning}"
    );

    // The same ids as the tokenizer that appends it, the long text still cut at the max length.
    assert_eq!(
        embedder
            .tokenize(&reference.texts, &Request::documents())
            .unwrap(),
        reference.documents.ids
    );
    assert_eq!(
        embedder
            .tokenize(&reference.texts, &Request::queries())
            .unwrap(),
        reference.queries.ids
    );
    let docs = embedder.embed(&reference.texts).unwrap();
    assert_rows_close(
        "no template",
        &docs,
        &reference.documents.embeddings,
        0.99999,
        1e-4,
    );
    let queries = embedder.embed_queries(&reference.texts).unwrap();
    assert_rows_close(
        "no template",
        &queries,
        &reference.queries.embeddings,
        0.99999,
        1e-4,
    );

    // The complete tokenizer gives no warning.
    let log = CapturedLog::default();
    log.capture(|| load("qwen3"));
    assert!(!log.text().contains("WARN"), "{}", log.text());
}

#[test]
fn every_text_in_a_batch_equals_the_text_alone() {
    let reference = reference(fixture("qwen3/reference.json"));
    let embedder = load("qwen3");
    // A batch of one has no padding at all: the causal mask alone must give the reference.
    assert_rows_close(
        "qwen3 alone",
        &one_at_a_time(&embedder, &reference.texts),
        &reference.documents.embeddings,
        0.99999,
        1e-4,
    );
    // Equal lengths fill a batch without padding; the causal part of the mask must stay.
    common::assert_batch_invariant("qwen3", &fixture("qwen3"), &reference.texts, 50);
}

#[test]
fn matryoshka_truncates_then_normalizes() {
    let reference = reference(fixture("qwen3/reference.json"));
    let matryoshka = extra().matryoshka;
    let (_tmp, options) = registered_fixture(
        "qwen3",
        "acme/tiny-qwen3",
        r#"name = "tiny-qwen3"
architecture = "qwen3"
pooling = "last-token"
normalize = true
dim = 40
matryoshka_min = 16
max_length = 40"#,
    );
    let embedder = Embedder::load("tiny-qwen3", options.clone().with_dim(matryoshka.dim)).unwrap();
    assert_eq!(embedder.dim(), matryoshka.dim);
    let docs = embedder.embed(&reference.texts).unwrap();
    assert_rows_close(
        "qwen3 matryoshka",
        &docs,
        &matryoshka.documents,
        0.99999,
        1e-4,
    );

    let err = Embedder::load("tiny-qwen3", options.with_dim(8)).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedDimension { requested: 8, .. }),
        "{err}"
    );

    // A Qwen3 directory the registry does not know gets Qwen3-Embedding's range, 32..=dim.
    let dir = Embedder::load(
        fixture("qwen3").to_str().unwrap(),
        Options::default()
            .with_device(Device::Cpu)
            .with_dim(matryoshka.dim),
    )
    .unwrap();
    assert_eq!(matryoshka.dim, 32);
    assert_rows_close(
        "qwen3 directory matryoshka",
        &dir.embed(&reference.texts).unwrap(),
        &matryoshka.documents,
        0.99999,
        1e-4,
    );
    let err = Embedder::load(
        fixture("qwen3").to_str().unwrap(),
        Options::default().with_device(Device::Cpu).with_dim(31),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedDimension { requested: 31, .. }),
        "{err}"
    );
}

/// The dtype CUDA runs by default: rotary and pooling in f32 keep it close to the reference.
#[test]
fn bf16_stays_close_to_the_reference() {
    let reference = reference(fixture("qwen3/reference.json"));
    let embedder = Embedder::load(
        fixture("qwen3").to_str().unwrap(),
        Options::default()
            .with_device(Device::Cpu)
            .with_precision(rembed::Precision::BF16),
    )
    .unwrap();
    let docs = embedder.embed(&reference.texts).unwrap();
    // Twice the worst measured on the CPU (2026-12-01: 1-cos 5.6e-4, max diff 0.0125).
    assert_rows_close(
        "qwen3 bf16",
        &docs,
        &reference.documents.embeddings,
        1.0 - 1.2e-3,
        0.025,
    );
}

#[test]
fn pre_tokenized_ids_embed_like_their_texts() {
    let reference = reference(fixture("qwen3/reference.json"));
    let embedder = load("qwen3");
    let from_ids = common::embed_ids(&embedder, &reference.documents.ids).unwrap();
    assert_rows_close(
        "qwen3 from token ids",
        &from_ids,
        &reference.documents.embeddings,
        0.99999,
        1e-4,
    );

    let vocab = embedder.tokenizer().get_vocab_size(true) as u32;
    let max = embedder.spec().max_length;
    let bad_inputs = [
        (vec![vec![1, 2], vec![]], 1, "no tokens"),
        (vec![vec![1; max + 1]], 0, "max length"),
        (
            vec![vec![1], vec![2], vec![1_000_000 + vocab]],
            2,
            "vocabulary",
        ),
    ];
    for (inputs, want_index, want_text) in bad_inputs {
        match common::embed_ids(&embedder, &inputs) {
            Err(Error::InvalidInput { index, reason }) => {
                assert_eq!(index, want_index, "{reason}");
                assert!(reason.contains(want_text), "{reason}");
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
}

#[test]
fn two_replicas_spread_batches_and_keep_input_order() {
    let reference = reference(fixture("qwen3/reference.json"));
    let one = load("qwen3");
    let two = Embedder::load(
        fixture("qwen3").to_str().unwrap(),
        Options::default()
            .with_devices([Device::Cpu, Device::Cpu])
            .with_max_batch_tokens(64),
    )
    .unwrap();
    assert_eq!(two.devices().len(), 2);
    let texts: Vec<String> = reference.texts.iter().cycle().take(40).cloned().collect();
    assert_same_rows(
        "two CPU replicas",
        &two.embed(&texts).unwrap(),
        &one.embed(&texts).unwrap(),
        0.99999,
    );
    let no_devices = Embedder::load(
        fixture("qwen3").to_str().unwrap(),
        Options::default().with_devices([]),
    );
    assert!(matches!(
        no_devices,
        Err(Error::InvalidOption {
            option: "devices",
            ..
        })
    ));
}
