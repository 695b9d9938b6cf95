//! What the corpus job costs on top of the model: the job against `embed` on the same texts,
//! with the tiny `bert-mean` fixture on the CPU, where the model is fastest and the job's own
//! work (JSON parsing, dedup and shard hashing, Parquet with snappy, two fsyncs per checkpoint,
//! the sampler thread) weighs the most. With a real model the share only shrinks.
//!
//! ```sh
//! cargo bench --features job --bench job_overhead
//! ```
//!
//! - `embed/all`: `Embedder::embed` on all texts in one call, from memory.
//! - `embed/batches`: the same in calls of 4096 texts, as the job makes them by default.
//! - `job`: `job::run` from a JSONL file into a fresh output directory, default settings.
//!
//! Overhead = job / embed/all - 1.

use std::io::Write;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rembed::job;
use rembed::{Device, Embedder, Options};

const TEXTS: usize = 8192;

fn corpus() -> Vec<String> {
    let words = [
        "the",
        "model",
        "reads",
        "a",
        "message",
        "about",
        "trains",
        "weather",
        "in",
        "zürich",
        "and",
        "replies",
        "with",
        "naïve",
        "questions",
        "later",
        "today",
    ];
    (0..TEXTS)
        .map(|i| {
            let len = 4 + (i * 7919) % 24;
            (0..len)
                .map(|j| words[(i + j * 31) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert-mean");
    let embedder = Embedder::load(
        &model.to_string_lossy(),
        Options::default().with_device(Device::Cpu),
    )
    .expect("bert-mean fixture");
    let texts = corpus();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("corpus.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input).expect("corpus file"));
    for (i, text) in texts.iter().enumerate() {
        let record = serde_json::json!({"id": format!("doc-{i}"), "text": text, "n": i});
        writeln!(file, "{record}").expect("write corpus");
    }
    file.flush().expect("write corpus");
    drop(file);

    let mut group = c.benchmark_group("job_overhead");
    group.throughput(Throughput::Elements(TEXTS as u64));
    group.sample_size(20);
    group.bench_function("embed/all", |b| {
        b.iter(|| embedder.embed(&texts).expect("embed"))
    });
    group.bench_function("embed/batches", |b| {
        b.iter(|| {
            for batch in texts.chunks(4096) {
                embedder.embed(batch).expect("embed");
            }
        })
    });
    group.bench_function("job", |b| {
        b.iter_batched(
            || tempfile::tempdir_in(dir.path()).expect("output dir"),
            |output| {
                let config = job::Config::new(&input, output.path()).with_progress(false);
                let report = job::run(&embedder, &config).expect("job");
                assert_eq!(report.counts.embedded, TEXTS as u64);
                output // dropped (deleted) outside the timing
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
