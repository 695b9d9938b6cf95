//! A model that gives NaN for some texts (here: NaN weights for one token; f16 overflow in real
//! life) never gets NaN rows into the output: those records are failures, listed with their id,
//! retried by the next run, and `verify` rejects a part file that holds such a row (as older
//! versions wrote them), which the next run moves aside and embeds again.
#![cfg(feature = "job")]

mod job_support;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, FixedSizeListArray, Float32Array, RecordBatch};
use arrow_schema::Field;
use job_support::{
    copy_model, load, load_dir, read_output, rewrite_weights, token_id, write_jsonl,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use rembed::job::{self, Why};
use serde_json::json;

fn config(input: &Path, output: &Path, model: &Path) -> job::Config {
    job::Config::new(input, output)
        .with_progress(false)
        .with_batch_records(8)
        .with_model_source(model.to_string_lossy())
}

/// 30 records; those whose id ends in 0 or 5 contain the poisoned word `q`.
fn corpus(path: &Path) {
    let records: Vec<_> = (0..30)
        .map(|i| {
            let text = if i % 5 == 0 {
                format!("the q word {i}")
            } else {
                format!("a fine text {i}")
            };
            json!({"id": format!("doc-{i}"), "text": text})
        })
        .collect();
    write_jsonl(path, &records);
}

#[test]
fn nan_vectors_are_failures_listed_and_retried_never_rows() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_model("bert-mean", &dir.path().join("model"));
    let poisoned = token_id(&model, "q");
    rewrite_weights(&model, |name, shape, values| {
        if name.ends_with("word_embeddings.weight") {
            let width = shape[1];
            values[poisoned * width..(poisoned + 1) * width].fill(f32::NAN);
        }
    });
    let input = dir.path().join("corpus.jsonl");
    corpus(&input);
    let output = dir.path().join("out");
    let embedder = load_dir(&model);

    let report = job::run(&embedder, &config(&input, &output, &model)).unwrap();
    assert_eq!(
        (report.counts.embedded, report.counts.failed),
        (24, 6),
        "{report}"
    );
    assert!(report.balanced() && !report.all_embedded(), "{report}");
    let failed: Vec<_> = report
        .failures
        .iter()
        .map(|f| f.id.as_ref().unwrap().as_str().to_string())
        .collect();
    assert_eq!(
        failed,
        ["doc-0", "doc-5", "doc-10", "doc-15", "doc-20", "doc-25"]
    );
    assert!(report.failures[0].reason.contains("non-finite"), "{report}");
    let listed = job::read_skipped(report.not_embedded.as_ref().unwrap()).unwrap();
    assert_eq!(listed.iter().filter(|s| s.why == Why::Failed).count(), 6);
    let rows = read_output(&output);
    assert_eq!(rows.len(), 24);
    assert!(rows
        .values()
        .all(|r| r.vector.iter().all(|x| x.is_finite())));
    // Failures are not done: the next run tries them again (and fails again here).
    let again = job::run(&embedder, &config(&input, &output, &model)).unwrap();
    assert_eq!(
        (again.counts.resumed, again.counts.failed),
        (24, 6),
        "{again}"
    );
    let check = job::verify(&output, None).unwrap();
    assert!(
        !check.ok() && check.failed == 6 && check.non_finite == 0,
        "{check}"
    );
}

#[test]
fn verify_rejects_a_part_with_a_nan_row() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    corpus(&input);
    let output = dir.path().join("out");
    let fixture = Path::new(&job_support::fixture("bert-mean")).to_path_buf();
    job::run(&load("bert-mean"), &config(&input, &output, &fixture)).unwrap();
    assert!(job::verify(&output, None).unwrap().ok());

    // As an older version of the job would have written it: one row's vector NaN.
    let part = output.join("part-000000.parquet");
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&part).unwrap()).unwrap();
    let schema = reader.schema().clone();
    let batches: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
    let mut writer = ArrowWriter::try_new(File::create(&part).unwrap(), schema, None).unwrap();
    for (b, batch) in batches.iter().enumerate() {
        let last = batch.num_columns() - 1;
        let list = batch
            .column(last)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .unwrap();
        let values = list
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .unwrap();
        let mut values: Vec<f32> = values.values().to_vec();
        if b == 0 {
            values[3] = f32::NAN;
        }
        let item = Arc::new(Field::new("item", arrow_schema::DataType::Float32, false));
        let list = FixedSizeListArray::try_new(
            item,
            list.value_length(),
            Arc::new(Float32Array::from(values)),
            None,
        )
        .unwrap();
        let mut columns = batch.columns().to_vec();
        columns[last] = Arc::new(list);
        writer
            .write(&RecordBatch::try_new(batch.schema(), columns).unwrap())
            .unwrap();
    }
    writer.close().unwrap();
    let check = job::verify(&output, None).unwrap();
    assert!(!check.ok(), "{check}");
    assert_eq!(check.non_finite, 1, "{check}");

    // Resume moves that part aside and embeds its records again.
    let report = job::run(&load("bert-mean"), &config(&input, &output, &fixture)).unwrap();
    assert!(report.counts.resumed < report.counts.embedded, "{report}");
    assert!(output.join(".part-000000.parquet.non-finite").is_file());
    let check = job::verify(&output, None).unwrap();
    assert!(check.ok(), "{check}");
    assert!(read_output(&output)
        .values()
        .all(|r| r.vector.iter().all(|x| x.is_finite())));
}
