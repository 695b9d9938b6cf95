//! CPU forward pass (tokenize, batch, run, pool) per architecture on its tiny fixture model.
//!
//! ```sh
//! cargo bench --bench forward
//! ```

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rembed::{Device, Embedder, Options};

/// Fixture directories under `tests/fixtures`, one per architecture.
const MODELS: &[&str] = &["bert-mean", "qwen3", "nomic-bert", "xlm-roberta-m3"];

fn sample() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.txt");
    std::fs::read_to_string(path)
        .expect("examples/sample.txt")
        .lines()
        .take(64)
        .map(str::to_string)
        .collect()
}

fn forward(c: &mut Criterion) {
    let texts = sample();
    let mut group = c.benchmark_group("forward_cpu");
    group.throughput(Throughput::Elements(texts.len() as u64));
    for name in MODELS {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/").to_string() + name;
        let embedder = Embedder::load(&dir, Options::default().with_device(Device::Cpu))
            .expect("fixture model");
        group.bench_function(*name, |b| b.iter(|| embedder.embed(&texts).expect("embed")));
    }
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
