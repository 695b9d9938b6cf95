//! Helpers shared by the corpus-job tests: a generated corpus with every kind of awkward record,
//! the ids it should produce, and the output read back with the Parquet library directly (not
//! through rembed), so the tests also check the files as other readers see them.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow_array::{Array, FixedSizeListArray, Float32Array, Int64Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rembed::{Device, Embedder, Options};

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A tiny fixture model on the CPU.
pub fn load(name: &str) -> Embedder {
    Embedder::load(&fixture(name), Options::default().with_device(Device::Cpu))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A small deterministic generator, so a failing run can be replayed from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What the corpus should give: per unique id with a non-empty text, the `n` of its first
/// occurrence (the record that wins).
pub struct Expected {
    pub ids: BTreeMap<String, i64>,
    pub lines: usize,
}

/// Writes `lines` records to `path`: duplicate ids (some with other texts), empty, blank,
/// null and missing texts, texts far over the fixture's 24-token limit, non-ASCII text, numeric
/// ids, varied metadata, and one malformed line.
pub fn write_corpus(path: &Path, lines: usize, seed: u64) -> Expected {
    let mut rng = Rng::new(seed);
    let mut out = BufWriter::new(File::create(path).unwrap());
    let mut first: HashMap<String, (i64, bool)> = HashMap::new();
    let words = [
        "alpha",
        "beta",
        "naïve",
        "café",
        "日本語",
        "テキスト",
        "🙂",
        "Ünïcödé",
        "zürich",
        "ёлка",
    ];
    for n in 0..lines as i64 {
        if n == lines as i64 / 2 {
            writeln!(out, "{{not json").unwrap();
            continue;
        }
        // One record in eight repeats an earlier id.
        let id_number = if n > 10 && rng.below(8) == 0 {
            rng.below(n as u64) as i64
        } else {
            n
        };
        let id = serde_json::json!(if id_number % 5 == 0 {
            serde_json::Value::from(id_number) // numeric ids become "10"
        } else {
            serde_json::Value::from(format!("doc-{id_number}"))
        });
        let text = match rng.below(10) {
            0 => serde_json::Value::from(""),
            1 => serde_json::Value::from("   \t "),
            2 => serde_json::Value::Null,
            3 => serde_json::Value::from(
                (0..60)
                    .map(|i| words[(i + n as usize) % words.len()])
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => serde_json::Value::from(format!(
                "{} {} record {n}",
                words[rng.below(10) as usize],
                words[rng.below(10) as usize]
            )),
        };
        let mut record = serde_json::json!({
            "id": id,
            "n": n,
            "lang": if n % 3 == 0 { "de" } else { "ja" },
            "tags": [n % 2, n % 3],
        });
        if rng.below(7) == 0 {
            record.as_object_mut().unwrap().remove("n");
        }
        let has_text = text.as_str().is_some_and(|t| !t.trim().is_empty());
        if text.is_null() && rng.below(2) == 0 {
            // Missing entirely rather than null.
        } else {
            record["text"] = text;
        }
        let key = match &record["id"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        first.entry(key).or_insert((n, has_text));
        writeln!(out, "{record}").unwrap();
    }
    out.flush().unwrap();
    Expected {
        ids: first
            .into_iter()
            .filter(|(_, (_, has_text))| *has_text)
            .map(|(id, (n, _))| (id, n))
            .collect(),
        lines,
    }
}

/// One output row: its `n` metadata (null when the record had none) and vector.
pub struct Row {
    pub n: Option<i64>,
    pub vector: Vec<f32>,
}

/// Every row of every part file in `dir`, by id; panics on a duplicate id.
pub fn read_output(dir: &Path) -> BTreeMap<String, Row> {
    let mut rows = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("part") && name.ends_with(".parquet")) {
            continue;
        }
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let column = |name: &str| batch.column_by_name(name).unwrap().clone();
            let ids = column("id");
            let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
            // `n` is the generated corpus's; other corpora have none.
            let ns = batch.column_by_name("n").cloned();
            let ns = ns
                .as_ref()
                .and_then(|n| n.as_any().downcast_ref::<Int64Array>());
            let vectors = column("embedding");
            let vectors = vectors
                .as_any()
                .downcast_ref::<FixedSizeListArray>()
                .unwrap();
            for i in 0..batch.num_rows() {
                let vector = vectors.value(i);
                let vector = vector.as_any().downcast_ref::<Float32Array>().unwrap();
                let row = Row {
                    n: ns.and_then(|ns| (!ns.is_null(i)).then(|| ns.value(i))),
                    vector: vector.values().to_vec(),
                };
                let id = ids.value(i).to_string();
                assert!(
                    rows.insert(id.clone(), row).is_none(),
                    "id {id} twice in {}",
                    dir.display()
                );
            }
        }
    }
    rows
}

/// Asserts two outputs hold the same ids with the same vectors (up to float rounding from
/// other batch compositions).
pub fn assert_same_output(a: &BTreeMap<String, Row>, b: &BTreeMap<String, Row>) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "ids differ"
    );
    for (id, row) in a {
        let other = &b[id];
        assert_eq!(row.n, other.n, "{id}: metadata");
        let diff = row
            .vector
            .iter()
            .zip(&other.vector)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(diff <= 1e-5, "{id}: vectors differ by {diff}");
    }
}

/// Asserts the output holds exactly the expected ids, each with its first occurrence's `n`
/// (the generator drops `n` from some records, which then have a null).
pub fn assert_expected_ids(rows: &BTreeMap<String, Row>, expected: &Expected) {
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        expected.ids.keys().collect::<Vec<_>>(),
        "output ids != unique non-empty input ids"
    );
    for (id, n) in &expected.ids {
        if let Some(got) = rows[id].n {
            assert_eq!(got, *n, "{id}: metadata of another occurrence");
        }
    }
}

/// A model directory loaded on the CPU.
pub fn load_dir(dir: &Path) -> Embedder {
    Embedder::load(
        &dir.to_string_lossy(),
        Options::default().with_device(Device::Cpu),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// Copies the fixture `name` into `to` (created), as a model directory of its own.
pub fn copy_model(name: &str, to: &Path) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
    copy(Path::new(&fixture(name)), to);
    to.to_path_buf()
}

/// Rewrites the f32 tensors of `dir/model.safetensors` in place: `edit(name, shape, values)`.
pub fn rewrite_weights(dir: &Path, mut edit: impl FnMut(&str, &[usize], &mut [f32])) {
    use safetensors::tensor::{Dtype, TensorView};
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut edited: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in tensors.tensors() {
        let mut data = view.data().to_vec();
        if view.dtype() == Dtype::F32 {
            let mut values: Vec<f32> = data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            edit(&name, view.shape(), &mut values);
            data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        }
        edited.push((name, view.dtype(), view.shape().to_vec(), data));
    }
    let views: Vec<(String, TensorView<'_>)> = edited
        .iter()
        .map(|(name, dtype, shape, data)| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// The id of `token` in the model directory's WordPiece vocabulary.
pub fn token_id(dir: &Path, token: &str) -> usize {
    let tokenizer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("tokenizer.json")).unwrap()).unwrap();
    tokenizer["model"]["vocab"][token]
        .as_u64()
        .unwrap_or_else(|| panic!("no token {token}")) as usize
}

/// Writes `records` (JSON values) as JSONL.
pub fn write_jsonl(path: &Path, records: &[serde_json::Value]) {
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}
