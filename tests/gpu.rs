//! Checks that need a CUDA device: bf16 parity of every fixture, batch invariance, out-of-memory
//! recovery against real driver errors, and replicas. Built only with the `cuda` feature; run on
//! the GPU machine as one binary, one test at a time (the memory tests need the whole device):
//!
//! ```text
//! cargo test --release --features cuda --test gpu --no-run   # here; then on the GPU machine:
//! ./gpu-tests --test-threads=1
//! ```
//!
//! `scripts/gpu/build.sh` and `scripts/gpu/run.sh` do both.
#![cfg(feature = "cuda")]

mod common;

use candle_core::{DType, Tensor};
use common::{assert_rows_close, assert_same_rows, fixture, one_at_a_time, reference};
use rembed::{Device, Embedder, Error, Options, Precision};

const FIXTURES: [&str; 6] = [
    "bert-mean",
    "bert-cls",
    "qwen3",
    "qwen3-no-template",
    "nomic-bert",
    "xlm-roberta-m3",
];

fn load(name: &str, options: Options) -> Embedder {
    Embedder::load(fixture(name).to_str().unwrap(), options)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The fixture's reference; the no-template Qwen3 tokenizer must give the templated one's rows.
fn reference_of(name: &str) -> common::Reference {
    let owner = if name == "qwen3-no-template" {
        "qwen3"
    } else {
        name
    };
    reference(fixture(&format!("{owner}/reference.json")))
}

/// How far a fixture's rows may drift from the f32 reference in a half precision:
/// `(1 - cosine, max abs diff)`. Three times the worst the CPU shows in the same precision
/// (measured 2026-12-01 on every fixture's documents and queries: bf16 1-cos 3.3e-5 to 5.6e-4,
/// max diff 3.8e-3 to 5.0e-2; f16 1-cos 4e-7 to 2.7e-6, max diff 6e-4 to 4.8e-3), since the
/// GPU's kernels round differently; never looser than that.
fn tolerance(name: &str, precision: Precision) -> (f32, f32) {
    let bf16 = match name {
        "bert-mean" => (3.3e-5, 3.8e-3),
        "bert-cls" => (1.5e-4, 5.0e-2),
        "qwen3" | "qwen3-no-template" => (5.6e-4, 1.25e-2),
        "nomic-bert" => (9.5e-5, 6.0e-3),
        "xlm-roberta-m3" => (9.6e-5, 8.3e-3),
        other => panic!("no measured tolerance for {other}"),
    };
    let f16 = match name {
        "bert-mean" => (4.2e-7, 6.3e-4),
        "bert-cls" => (1.8e-6, 4.8e-3),
        "qwen3" | "qwen3-no-template" => (2.7e-6, 9.8e-4),
        "nomic-bert" => (1.4e-6, 8.4e-4),
        "xlm-roberta-m3" => (1.5e-6, 7.6e-4),
        other => panic!("no measured tolerance for {other}"),
    };
    let (cos, diff) = match precision {
        Precision::BF16 => bf16,
        Precision::F16 => f16,
        // f32: the CPU parity bound (1e-5, 1e-4), with GPU reduction order allowed 10x on the
        // difference.
        _ => return (1e-5, 1e-3),
    };
    ((3.0 * cos as f32).max(1e-5), 3.0 * diff as f32)
}

/// Rows against the reference within the measured tolerance of a precision.
fn assert_within(
    name: &str,
    precision: Precision,
    label: &str,
    got: &ndarray::Array2<f32>,
    want: &[Vec<f32>],
) {
    let (one_minus_cos, max_diff) = tolerance(name, precision);
    assert_rows_close(label, got, want, 1.0 - one_minus_cos, max_diff);
}

fn cuda() -> Options {
    Options::default().with_device(Device::Cuda(0))
}

/// Texts of mixed lengths, long enough that a batch of them needs real memory.
fn long_texts(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let words = 40 + (i * 37) % 200;
            (0..words)
                .map(|w| format!("word{} ", (i * 7 + w * 13) % 97))
                .collect()
        })
        .collect()
}

#[test]
fn cuda_is_selected_and_bf16_is_the_default() {
    let embedder = load("bert-mean", Options::default());
    assert_eq!(embedder.devices(), [Device::Cuda(0)], "auto picks the GPU");
    assert_eq!(embedder.precision(), Precision::BF16);
    let err = Embedder::load(
        fixture("bert-mean").to_str().unwrap(),
        Options::default().with_device(Device::Cuda(63)),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::DeviceUnavailable { device, .. } if device == "cuda:63"),
        "{err}"
    );
}

#[test]
fn every_fixture_in_bf16_matches_the_f32_reference() {
    for name in FIXTURES {
        let reference = reference_of(name);
        let embedder = load(name, cuda());
        assert_eq!(embedder.precision(), Precision::BF16, "{name}");
        let docs = embedder.embed(&reference.texts).unwrap();
        let label = format!("{name} bf16 documents");
        assert_within(
            name,
            Precision::BF16,
            &label,
            &docs,
            &reference.documents.embeddings,
        );
        let queries = embedder.embed_queries(&reference.texts).unwrap();
        let label = format!("{name} bf16 queries");
        assert_within(
            name,
            Precision::BF16,
            &label,
            &queries,
            &reference.queries.embeddings,
        );
        eprintln!(
            "{name}: bf16 rows within {:?} of the reference",
            tolerance(name, Precision::BF16)
        );
    }
}

#[test]
fn every_fixture_in_f32_and_f16_on_the_gpu() {
    for name in FIXTURES {
        let reference = reference_of(name);
        let f32 = load(name, cuda().with_precision(Precision::F32));
        let docs = f32.embed(&reference.texts).unwrap();
        let label = format!("{name} f32 on cuda");
        assert_within(
            name,
            Precision::F32,
            &label,
            &docs,
            &reference.documents.embeddings,
        );
        let f16 = load(name, cuda().with_precision(Precision::F16));
        let docs = f16.embed(&reference.texts).unwrap();
        let label = format!("{name} f16 on cuda");
        assert_within(
            name,
            Precision::F16,
            &label,
            &docs,
            &reference.documents.embeddings,
        );
    }
}

#[test]
fn bge_m3_outputs_on_the_gpu() {
    let reference = reference(fixture("xlm-roberta-m3/reference.json"));
    let embedder = load("xlm-roberta-m3", cuda());
    let request = rembed::Request::default()
        .with_sparse(true)
        .with_colbert(true);
    let all = embedder.embed_with(&reference.texts, &request).unwrap();
    let (sparse, colbert) = (all.sparse.unwrap(), all.colbert.unwrap());
    assert_rows_close(
        "bge-m3 dense with sparse and colbert",
        &all.dense,
        &reference.documents.embeddings,
        0.999,
        1.0,
    );
    assert!(colbert.iter().all(|c| c.iter().all(|v| v.is_finite())));
    assert!(sparse
        .iter()
        .all(|s| s.values.iter().all(|w| w.is_finite())));
}

#[test]
fn batch_invariance_on_the_gpu() {
    for name in FIXTURES {
        let reference = reference_of(name);
        for precision in [Precision::BF16, Precision::F32] {
            let embedder = load(name, cuda().with_precision(precision));
            let together = embedder.embed(&reference.texts).unwrap();
            let alone = one_at_a_time(&embedder, &reference.texts);
            let min_cos = if precision == Precision::F32 {
                0.99999
            } else {
                0.999
            };
            let label = format!("{name} {precision:?} batch invariance");
            assert_same_rows(&label, &together, &alone, min_cos);
        }
    }
}

/// `tests/fixtures/gguf/qwen3-wide/reference.json` (written by `generate_gguf.py`): vectors
/// of each quantized file's weights dequantized to f32, by transformers.
#[derive(serde::Deserialize)]
struct GgufReference {
    texts: Vec<String>,
    files: std::collections::BTreeMap<String, GgufFile>,
}

#[derive(serde::Deserialize)]
struct GgufFile {
    embeddings: Vec<Vec<f32>>,
}

#[test]
fn quantized_qwen3_on_the_gpu_matches_the_dequantized_reference() {
    let path = fixture("gguf/qwen3-wide/reference.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let reference: GgufReference = serde_json::from_str(&text).unwrap();
    assert!(!reference.files.is_empty());
    for (file, expected) in &reference.files {
        let embedder = load(&format!("gguf/{file}"), cuda());
        assert_eq!(embedder.precision(), Precision::F32, "{file}");
        let together = embedder.embed(&reference.texts).unwrap();
        // CUDA's quantized kernels quantize the activations too, as the CPU's do.
        assert_rows_close(file, &together, &expected.embeddings, 0.999, 1.0);
        // candle picks its CUDA kernel by row count (a one-row product quantizes the input,
        // more rows run on dequantized weights), so a one-token text alone may take the other
        // kernel: within the quantized tolerance, not bit for bit.
        let alone = one_at_a_time(&embedder, &reference.texts);
        assert_same_rows(
            &format!("{file} batch invariance"),
            &together,
            &alone,
            0.999,
        );
    }
}

#[test]
fn two_replicas_on_one_device_match_one() {
    let texts = long_texts(64);
    let options = cuda()
        .with_precision(Precision::F32)
        .with_max_batch_tokens(512);
    let one = load("qwen3", options.clone());
    let two = load(
        "qwen3",
        options.with_devices([Device::Cuda(0), Device::Cuda(0)]),
    );
    assert_eq!(two.devices().len(), 2);
    let (a, b) = (one.embed(&texts).unwrap(), two.embed(&texts).unwrap());
    assert_same_rows("two replicas", &a, &b, 0.99999);
}

/// Device memory of the embedder's first device: free bytes now.
fn free_memory(embedder: &Embedder, device: &candle_core::Device) -> u64 {
    device.synchronize().unwrap();
    rembed::gpu_memory::usage(embedder)[0]
        .expect("CUDA memory figures")
        .free
}

/// Holds all but about `leave` bytes of the embedder's device's free memory until dropped:
/// blocks of shrinking size, so that the pool's granularity cannot make one big request fail.
fn hog(embedder: &Embedder, leave: u64) -> Vec<Tensor> {
    let device = candle_core::Device::new_cuda(0).unwrap();
    let mut held = Vec::new();
    let mut block: u64 = 1 << 30;
    while block >= 1 << 16 {
        let free = free_memory(embedder, &device);
        if free >= leave + block {
            match Tensor::zeros(block as usize, DType::U8, &device) {
                Ok(tensor) => held.push(tensor),
                Err(_) => block /= 2,
            }
        } else {
            block /= 2;
        }
    }
    held
}

/// Qwen3-Embedding-0.6B's architecture with random weights in f32: big enough that a batch
/// needs gigabytes (attention scores grow with the square of the length), small enough to leave
/// most of the device to squeeze. No budget limit, so a whole workload is one batch.
fn big_model() -> Embedder {
    Embedder::random_weights(
        "qwen3-embedding-0.6b",
        0,
        cuda()
            .with_precision(Precision::F32)
            .with_max_batch_tokens(1 << 24),
    )
    .unwrap()
}

/// `count` inputs of `len` token ids each.
fn ids(count: usize, len: usize) -> Vec<Vec<u32>> {
    (0..count)
        .map(|i| {
            (0..len)
                .map(|t| 1000 + ((i * 7919 + t * 104_729) % 100_000) as u32)
                .collect()
        })
        .collect()
}

const GIB: u64 = 1 << 30;

#[test]
fn out_of_memory_halves_for_real_and_matches_the_unconstrained_run() {
    let embedder = big_model();
    // 64 x 1024 tokens: 16 heads x 1024^2 x 4 bytes = 4 GiB of f32 scores per layer at once.
    let inputs = ids(64, 1024);
    let unconstrained = common::embed_ids(&embedder, &inputs).unwrap();

    // The working set is not known exactly, so memory is squeezed step by step until the batch
    // no longer fits whole; every step must still give every row, equal to the whole batch's.
    let mut halved = false;
    for leave in [16 * GIB, 8 * GIB, 4 * GIB, 2 * GIB, GIB, GIB / 2] {
        let held = hog(&embedder, leave);
        let log = common::CapturedLog::default();
        let run = log.capture(|| common::embed_ids(&embedder, &inputs));
        drop(held);
        let run = run.unwrap_or_else(|e| panic!("{} GiB left: {e}", leave as f64 / GIB as f64));
        assert_same_rows("after halving", &run, &unconstrained, 0.99999);
        let splits = log.text().matches("halving the batch").count();
        eprintln!(
            "{:.1} GiB left: {splits} halvings",
            leave as f64 / GIB as f64
        );
        if splits > 0 {
            halved = true;
            break;
        }
    }
    assert!(halved, "memory never got scarce enough to halve");

    // The device is still usable afterwards, with nothing held back.
    let again = common::embed_ids(&embedder, &inputs[..4]).unwrap();
    assert_same_rows(
        "after recovery",
        &again,
        &unconstrained.slice(ndarray::s![..4, ..]).to_owned(),
        0.99999,
    );
}

#[test]
fn a_single_input_that_cannot_fit_is_out_of_memory_with_its_index() {
    let embedder = big_model();
    // One input of 16,384 tokens: attention is blocked (a bounded score tensor), but its f32
    // activations still take over a GiB (16,384 x 3 x 3,072 x 4 bytes in the feed-forward).
    let mut inputs = ids(3, 16);
    inputs.insert(1, ids(1, 16_384).remove(0));
    // Kernels loaded before memory is scarce, and the first input's row to compare with after.
    let before = common::embed_ids(&embedder, &inputs[..1]).unwrap();

    let held = hog(&embedder, GIB / 4);
    let result = common::embed_ids(&embedder, &inputs);
    drop(held);
    match result {
        Err(Error::OutOfMemory {
            index,
            tokens,
            reason,
        }) => {
            eprintln!("out-of-memory error text: {reason}");
            assert_eq!((index, tokens), (1, 16_384));
            assert!(
                reason.contains("CUDA_ERROR_OUT_OF_MEMORY")
                    || reason.contains("CUBLAS_STATUS_ALLOC_FAILED"),
                "the error names the driver's out-of-memory code: {reason}"
            );
        }
        other => panic!("expected Error::OutOfMemory, got {other:?}"),
    }

    // The other inputs go through afterwards, the same as before memory was scarce.
    let rest = common::embed_ids(&embedder, &[inputs[0].clone(), inputs[2].clone()]).unwrap();
    assert_same_rows(
        "after out-of-memory",
        &rest.slice(ndarray::s![..1, ..]).to_owned(),
        &before,
        0.99999,
    );
}

/// Long inputs: a 32,768-token text and a 15,000-token one in the same call, through a tiny Qwen3
/// with a 32k window on the GPU in f32, equal PyTorch (sentence-transformers with sdpa). The
/// model, texts and reference are written by `scripts/long_inputs.py qwen3` into `target/long-qwen3`
/// (ignored; carry it to the GPU machine):
///
/// ```text
/// python3 scripts/long_inputs.py qwen3 target/long-qwen3
/// python3 scripts/long_inputs.py qwen3 target/long-qwen3 --st 32768,15000
/// ```
///
/// Before blocked attention this input made (1, 4, 32768, 32768) scores: 2^32 elements, past
/// the 32-bit indexing of candle's CUDA kernels.
#[test]
fn a_32k_token_input_on_the_gpu_equals_pytorch_sdpa() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/long-qwen3");
    let reference = dir.join("st-32768,15000.npy");
    assert!(
        reference.exists(),
        "{} is missing: run scripts/long_inputs.py qwen3 (see this test's doc)",
        reference.display()
    );
    let want: ndarray::Array2<f32> = ndarray_npy::read_npy(&reference).unwrap();
    let texts: Vec<String> = [32_768, 15_000]
        .iter()
        .map(|n| std::fs::read_to_string(dir.join(format!("texts-{n}.txt"))).unwrap())
        .map(|t| t.trim_end().to_string())
        .collect();
    let embedder =
        Embedder::load(dir.to_str().unwrap(), cuda().with_precision(Precision::F32)).unwrap();
    let got = embedder.embed(&texts).unwrap();
    let want: Vec<Vec<f32>> = want.rows().into_iter().map(|r| r.to_vec()).collect();
    assert_rows_close("32k on the GPU", &got, &want, 0.9999, 1e-3);
}
