//! Tokenization of the sample input with all-MiniLM-L6-v2's tokenizer.
//!
//! ```sh
//! python3 scripts/seed_hub_cache.py target/hub-cache   # where the hub is unreachable
//! HF_HUB_CACHE=target/hub-cache cargo bench --bench batching
//! ```

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rembed::{Device, Embedder, Options, Request};

fn sample() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.txt");
    std::fs::read_to_string(path)
        .expect("examples/sample.txt")
        .lines()
        .map(str::to_string)
        .collect()
}

fn tokenize_and_plan(c: &mut Criterion) {
    let texts = sample();
    let embedder = Embedder::load(
        "all-minilm-l6-v2",
        Options::default().with_device(Device::Cpu),
    )
    .expect("all-minilm-l6-v2 in the hub cache (scripts/seed_hub_cache.py)");
    let mut group = c.benchmark_group("batching");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("tokenize/all-minilm-l6-v2/sample", |b| {
        b.iter(|| {
            embedder
                .tokenize(&texts, &Request::documents())
                .expect("tokenize")
        })
    });
    group.finish();
}

criterion_group!(benches, tokenize_and_plan);
criterion_main!(benches);
