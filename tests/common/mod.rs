//! Helpers shared by the integration tests: fixture paths, reference files, vector comparison.
#![allow(dead_code)]

use std::path::PathBuf;

use ndarray::{Array2, ArrayView1};
use serde::Deserialize;

/// `tests/fixtures/<name>`. A test binary run on another machine than it was built on (the GPU
/// one) finds the fixtures in the checkout it runs from.
pub fn fixture(name: &str) -> PathBuf {
    let built_in = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let root = if built_in.is_dir() {
        built_in
    } else {
        PathBuf::from("tests/fixtures")
    };
    root.join(name)
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

/// The largest element-wise difference of two vectors of the same length.
pub fn max_abs_diff(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths");
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
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
        let diff = max_abs_diff(row, want);
        assert!(cos >= min_cos, "{label}: row {i} cosine {cos}");
        assert!(diff <= max_diff, "{label}: row {i} max abs diff {diff}");
    }
}

/// Asserts two embedding matrices agree row by row (batch invariance): in direction (cosine of
/// at least `min_cos`) and in length (relative difference within `1 - min_cos`, at least 1e-5),
/// so a scale error on an un-normalized model fails too.
pub fn assert_same_rows(label: &str, a: &Array2<f32>, b: &Array2<f32>, min_cos: f32) {
    assert_eq!(a.dim(), b.dim(), "{label}: shapes");
    let tolerance = (1.0 - min_cos).max(1e-5);
    for i in 0..a.nrows() {
        let cos = cosine(a.row(i), b.row(i));
        assert!(cos >= min_cos, "{label}: row {i} cosine {cos}");
        let (na, nb) = (
            a.row(i).dot(&a.row(i)).sqrt(),
            b.row(i).dot(&b.row(i)).sqrt(),
        );
        assert!(
            (na - nb).abs() <= tolerance * nb.max(1e-6),
            "{label}: row {i} norms {na} and {nb}"
        );
    }
}

/// Batch invariance of the fixture model in `dir` on `texts`: the whole list in one call, in
/// many small batches (`small_budget` tokens each), and a batch of equal-length texts (no
/// padding at all) each equal every text embedded alone.
pub fn assert_batch_invariant(
    label: &str,
    dir: &std::path::Path,
    texts: &[String],
    small_budget: usize,
) {
    let cpu = || rembed::Options::default().with_device(rembed::Device::Cpu);
    let embedder = rembed::Embedder::load(dir.to_str().unwrap(), cpu()).unwrap();
    let alone = one_at_a_time(&embedder, texts);
    let mixed = embedder.embed(texts).unwrap();
    assert_same_rows(&format!("{label} mixed batch"), &mixed, &alone, 0.99999);

    let small = rembed::Embedder::load(
        dir.to_str().unwrap(),
        cpu().with_max_batch_tokens(small_budget),
    )
    .unwrap();
    let batches = small.embed(texts).unwrap();
    assert_same_rows(&format!("{label} small batches"), &batches, &alone, 0.99999);

    let equal = equal_length_texts(&embedder);
    assert_same_rows(
        &format!("{label} equal lengths"),
        &embedder.embed(&equal).unwrap(),
        &one_at_a_time(&embedder, &equal),
        0.99999,
    );
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

/// Token ids embedded as given.
pub fn embed_ids(embedder: &rembed::Embedder, ids: &[Vec<u32>]) -> rembed::Result<Array2<f32>> {
    embedder
        .embed_with(&rembed::TokenIds(ids), &rembed::Request::default())
        .map(|e| e.dense)
}

/// Each text embedded in a call of its own, rows stacked: the batch-of-one baseline that batch
/// invariance is checked against.
pub fn one_at_a_time(embedder: &rembed::Embedder, texts: &[String]) -> Array2<f32> {
    let rows: Vec<Array2<f32>> = texts
        .iter()
        .map(|t| embedder.embed(std::slice::from_ref(t)).unwrap())
        .collect();
    ndarray::concatenate(
        ndarray::Axis(0),
        &rows.iter().map(|a| a.view()).collect::<Vec<_>>(),
    )
    .unwrap()
}

/// A Hugging Face hub cache holding fixture `name` as repo `repo`, and a registry file whose
/// `entry` (one `[[model]]` table, without `repo`) points at it: how a test gives a fixture the
/// registry metadata (Matryoshka dimensions, recipes) that only `models.toml` carries.
/// Returns the temporary directory (keep it alive) and options that load through it offline.
/// Copies a directory tree (a fixture into a temporary hub cache or a scratch model dir).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub fn registered_fixture(
    name: &str,
    repo: &str,
    entry: &str,
) -> (tempfile::TempDir, rembed::Options) {
    let tmp = tempfile::tempdir().unwrap();
    let commit = "2222222222222222222222222222222222222222";
    let cached = tmp
        .path()
        .join("hub")
        .join(format!("models--{}", repo.replace('/', "--")));
    std::fs::create_dir_all(cached.join("refs")).unwrap();
    std::fs::write(cached.join("refs/main"), commit).unwrap();
    copy_dir(&fixture(name), &cached.join("snapshots").join(commit));
    let registry = tmp.path().join("models.toml");
    std::fs::write(
        &registry,
        format!("[[model]]\nrepo = \"{repo}\"\n{entry}\n"),
    )
    .unwrap();
    let options = rembed::Options::default()
        .with_device(rembed::Device::Cpu)
        .with_registry_file(&registry)
        .with_cache_dir(tmp.path().join("hub"))
        .with_offline(true);
    (tmp, options)
}

/// A tracing subscriber's output, captured for tests that check a warning was given.
#[derive(Clone, Default)]
pub struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLog {
    /// Runs `f` with a subscriber that writes into this log.
    pub fn capture<T>(&self, f: impl FnOnce() -> T) -> T {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f)
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// At least three short texts with the same token count (as documents), for a batch without
/// padding.
pub fn equal_length_texts(embedder: &rembed::Embedder) -> Vec<String> {
    let candidates: Vec<String> = [
        "the quick fox",
        "the lazy dog",
        "hello world ok",
        "paris france capital",
        "data races",
        "null pointers",
        "vector search",
        "chat logs",
        "safe rust",
        "brown fox",
        "the report",
        "the committee",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let ids = embedder
        .tokenize(&candidates, &rembed::Request::documents())
        .unwrap();
    let mut by_length = std::collections::BTreeMap::<usize, Vec<String>>::new();
    for (text, ids) in candidates.into_iter().zip(ids) {
        by_length.entry(ids.len()).or_default().push(text);
    }
    let group = by_length.into_values().max_by_key(Vec::len).unwrap();
    assert!(group.len() >= 3, "{group:?}");
    group
}
