//! The CPU kernels of the shared layers against the candle compositions they replace, on
//! all-MiniLM-L6-v2's shapes (16 rows of 128 tokens, 12 heads of 32, width 384, inner 1536),
//! and the dense layer at Qwen3-0.6B's width too.
//!
//! ```sh
//! cargo bench --bench kernels
//! ```

use candle_core::{DType, Device, Tensor};
use candle_nn::LayerNorm;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rembed::kernels;

const ROWS: usize = 16;
const TOKENS: usize = 128;
const HEADS: usize = 12;
const HEAD_DIM: usize = 32;

fn gelu(c: &mut Criterion) {
    let x = Tensor::randn(0f32, 1.0, (ROWS, TOKENS, 1536), &Device::Cpu).expect("input");
    let mut group = c.benchmark_group("gelu_cpu");
    group.throughput(Throughput::Elements(x.elem_count() as u64));
    group.bench_function("candle_gelu_erf", |b| {
        b.iter(|| x.gelu_erf().expect("gelu"))
    });
    group.bench_function("vectorized", |b| {
        b.iter(|| kernels::gelu(&x).expect("gelu"))
    });
    group.finish();
}

fn swiglu(c: &mut Criterion) {
    let dev = Device::Cpu;
    let gate = Tensor::randn(0f32, 1.0, (ROWS, TOKENS, 1536), &dev).expect("input");
    let up = Tensor::randn(0f32, 1.0, (ROWS, TOKENS, 1536), &dev).expect("input");
    let mut group = c.benchmark_group("swiglu_cpu");
    group.throughput(Throughput::Elements(gate.elem_count() as u64));
    group.bench_function("candle_silu_mul", |b| {
        b.iter(|| (candle_nn::ops::silu(&gate).expect("silu") * &up).expect("mul"))
    });
    group.bench_function("vectorized", |b| {
        b.iter(|| kernels::swiglu(&gate, &up).expect("swiglu"))
    });
    group.finish();
}

fn add_layer_norm(c: &mut Criterion) {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (ROWS, TOKENS, 384), &dev).expect("input");
    let residual = Tensor::randn(0f32, 1.0, (ROWS, TOKENS, 384), &dev).expect("input");
    let norm = LayerNorm::new(
        Tensor::ones(384, DType::F32, &dev).expect("weight"),
        Tensor::zeros(384, DType::F32, &dev).expect("bias"),
        1e-12,
    );
    let mut group = c.benchmark_group("add_layer_norm_cpu");
    group.throughput(Throughput::Elements((ROWS * TOKENS) as u64));
    group.bench_function("candle_add_then_norm", |b| {
        b.iter(|| candle_core::Module::forward(&norm, &(&x + &residual).expect("add")))
    });
    group.bench_function("fused", |b| {
        b.iter(|| kernels::add_layer_norm(&norm, &x, &residual).expect("norm"))
    });
    group.finish();
}

fn attention(c: &mut Criterion) {
    let dev = Device::Cpu;
    // Head views of (B, L, H·D) projections, as the models pass them; lengths sorted and padded
    // as a batch of mixed texts comes.
    let heads = || {
        Tensor::randn(0f32, 1.0, (ROWS, TOKENS, HEADS * HEAD_DIM), &dev)
            .and_then(|x| x.reshape((ROWS, TOKENS, HEADS, HEAD_DIM)))
            .and_then(|x| x.transpose(1, 2))
            .expect("heads")
    };
    let (q, k, v) = (heads(), heads(), heads());
    let lengths: Vec<usize> = (0..ROWS).map(|i| TOKENS - i * 3).collect();
    let mut group = c.benchmark_group("attention_cpu");
    group.throughput(Throughput::Elements(lengths.iter().sum::<usize>() as u64));
    for causal in [false, true] {
        let kind = if causal { "causal" } else { "bidirectional" };
        group.bench_function(format!("composed/{kind}"), |b| {
            b.iter(|| kernels::attention_composed(&q, &k, &v, &lengths, causal).expect("attention"))
        });
        group.bench_function(format!("fused/{kind}"), |b| {
            b.iter(|| kernels::attention(&q, &k, &v, &lengths, causal).expect("attention"))
        });
    }
    group.finish();
}

/// Dense layers with a bias at 2,048 rows (the CPU batch budget): all-MiniLM's feed-forward
/// input (384 -> 1,536) and Qwen3-0.6B's gate projection (1,024 -> 3,072). Throughput in
/// multiply-adds.
fn linear(c: &mut Criterion) {
    let dev = Device::Cpu;
    let mut group = c.benchmark_group("linear_cpu");
    for (inputs, outputs) in [(384, 1536), (1024, 3072)] {
        let rows = ROWS * TOKENS;
        let x = Tensor::randn(0f32, 1.0, (ROWS, TOKENS, inputs), &dev).expect("input");
        let w = Tensor::randn(0f32, 0.05, (outputs, inputs), &dev).expect("weight");
        let b = Tensor::randn(0f32, 0.05, outputs, &dev).expect("bias");
        let candle = candle_nn::Linear::new(w.clone(), Some(b.clone()));
        let ours = kernels::Linear::new(w, Some(b)).expect("layer");
        group.throughput(Throughput::Elements((rows * inputs * outputs) as u64));
        group.bench_function(format!("candle/{inputs}x{outputs}"), |bench| {
            bench.iter(|| candle_core::Module::forward(&candle, &x).expect("linear"))
        });
        group.bench_function(
            format!("transposed_fused_bias/{inputs}x{outputs}"),
            |bench| bench.iter(|| ours.forward(&x).expect("linear")),
        );
    }
    group.finish();
}

/// The rotary embedding of the key heads of a fused q/k/v projection (nomic-embed's `Wqkv`),
/// strided views of it; throughput in head vectors.
fn rotary(c: &mut Criterion) {
    let dev = Device::Cpu;
    let (heads, head_dim) = (12, 64);
    let qkv = Tensor::randn(0f32, 1.0, (ROWS, TOKENS, 3 * heads * head_dim), &dev)
        .and_then(|x| x.reshape((ROWS, TOKENS, 3, heads, head_dim)))
        .and_then(|x| x.permute((2, 0, 3, 1, 4)))
        .and_then(|x| x.narrow(0, 1, 1))
        .and_then(|x| x.squeeze(0))
        .expect("key heads");
    let angles = Tensor::randn(0f32, 3.0, (TOKENS, head_dim / 2), &dev).expect("angles");
    let (cos, sin) = (angles.cos().expect("cos"), angles.sin().expect("sin"));
    let mut group = c.benchmark_group("rotary_cpu");
    group.throughput(Throughput::Elements((ROWS * heads * TOKENS) as u64));
    group.bench_function("contiguous_then_rope", |b| {
        b.iter(|| kernels::rotary_composed(&qkv, &cos, &sin).expect("rope"))
    });
    group.bench_function("fused_strided", |b| {
        b.iter(|| kernels::rotary(&qkv, &cos, &sin).expect("rope"))
    });
    group.finish();
}

/// Qwen3's per-head q norm: 16 heads of 128 over 2,048 tokens; throughput in rows.
fn rms_norm(c: &mut Criterion) {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (ROWS, TOKENS, 16, 128), &dev).expect("input");
    let weight = Tensor::randn(1f32, 0.1, 128, &dev).expect("weight");
    let candle = candle_nn::RmsNorm::new(weight.clone(), 1e-6);
    let ours = kernels::RmsNorm::new(weight, 1e-6).expect("norm");
    let mut group = c.benchmark_group("rms_norm_cpu");
    group.throughput(Throughput::Elements((ROWS * TOKENS * 16) as u64));
    group.bench_function("candle", |b| {
        b.iter(|| candle_core::Module::forward(&candle, &x).expect("norm"))
    });
    group.bench_function("vectorized", |b| b.iter(|| ours.forward(&x).expect("norm")));
    group.finish();
}

criterion_group!(
    benches,
    gelu,
    swiglu,
    add_layer_norm,
    attention,
    linear,
    rotary,
    rms_norm
);
criterion_main!(benches);
