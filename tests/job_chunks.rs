//! The chunk JSONL that `chunk_messages` writes embeds as is, with `--id-field chunk_id
//! --text-field text`, and its fields come out as typed Parquet columns.
#![cfg(feature = "job")]

mod job_support;

use std::fs::File;

use arrow_array::{Array, Int64Array, StringArray};
use arrow_schema::DataType;
use job_support::load;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rembed::job;

#[test]
fn chunk_jsonl_embeds_with_typed_metadata_columns() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("chunks.jsonl");
    let chunks: String = (0..40)
        .map(|i| {
            let record = serde_json::json!({
                "chunk_id": format!("t{}-s0-c{i}", i % 3),
                "thread_id": format!("t{}", i % 3),
                "thread_name": "Ünïcödé group 🙂",
                "session_idx": 0,
                "chunk_idx": i,
                "participant_ids": ["u1", "u2"],
                "participant_names": ["Ana", "Bo"],
                "text": format!("Ana: hello {i}\nBo: hi, see you at 5?"),
                "message_ids": [format!("m{i}"), format!("m{}", i + 1)],
                "start_timestamp_ms": 1_700_000_000_000i64 + i * 60_000,
                "end_timestamp_ms": 1_700_000_000_000i64 + i * 60_000 + 5_000,
                "message_count": 2,
            });
            format!("{record}\n")
        })
        .collect();
    std::fs::write(&input, chunks).unwrap();
    let output = dir.path().join("vectors");
    let config = job::Config::new(&input, &output)
        .with_id_field("chunk_id")
        .with_text_field("text")
        .with_progress(false);
    let report = job::run(&load("bert-mean"), &config).unwrap();
    assert!(report.all_embedded(), "{report}");
    assert_eq!(report.counts.embedded, 40);

    let part = File::open(output.join("part-000000.parquet")).unwrap();
    let batch = ParquetRecordBatchReaderBuilder::try_new(part)
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let schema = batch.schema();
    let column_type = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(column_type("id"), DataType::Utf8);
    assert_eq!(column_type("thread_id"), DataType::Utf8);
    assert_eq!(column_type("start_timestamp_ms"), DataType::Int64);
    assert_eq!(column_type("participant_ids"), DataType::Utf8); // JSON text
    assert!(matches!(
        column_type("embedding"),
        DataType::FixedSizeList(_, 36)
    ));
    assert!(
        schema.field_with_name("text").is_err(),
        "texts are not copied"
    );
    assert!(
        schema.field_with_name("chunk_id").is_err(),
        "the id is the `id` column"
    );

    let ids = batch.column_by_name("id").unwrap();
    let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
    let starts = batch.column_by_name("start_timestamp_ms").unwrap();
    let starts = starts.as_any().downcast_ref::<Int64Array>().unwrap();
    let names = batch.column_by_name("participant_ids").unwrap();
    let names = names.as_any().downcast_ref::<StringArray>().unwrap();
    let row = (0..batch.num_rows())
        .find(|&r| ids.value(r) == "t1-s0-c7")
        .unwrap();
    assert_eq!(starts.value(row), 1_700_000_000_000 + 7 * 60_000);
    assert_eq!(names.value(row), r#"["u1","u2"]"#);
}
