//! CPU tokens/s of Qwen3-0.6B's transformer shape stored as GGUF in F32, Q8_0 and Q4_K, measured
//! side by side in one run (the types take turns, so a busy machine slows all of them alike).
//! The weights are random (speed does not depend on their values); the vocabulary is cut to
//! `--vocab` rows, which changes nothing per token (a row lookup) but the file sizes.
//!
//! ```text
//! cargo run --release --example gguf_speed -- [--layers 28] [--texts 4] [--tokens 128] [--reps 3]
//! ```
//!
//! The files are written once into `--dir` (default `target/gguf-speed`) and reused.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device as CandleDevice, Tensor};
use clap::Parser;
use rembed::{Device, Embedder, Options, Request, TokenIds};

#[derive(Parser)]
struct Args {
    /// Transformer blocks (Qwen3-0.6B has 28).
    #[arg(long, default_value_t = 28)]
    layers: usize,
    /// Rows of the token embedding.
    #[arg(long, default_value_t = 1024)]
    vocab: usize,
    /// Inputs per forward pass.
    #[arg(long, default_value_t = 4)]
    texts: usize,
    /// Tokens per input.
    #[arg(long, default_value_t = 128)]
    tokens: usize,
    /// Timed passes per type.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    #[arg(long, default_value = "target/gguf-speed")]
    dir: PathBuf,
}

// Qwen3-0.6B (models.toml's qwen3-embedding-0.6b).
const HIDDEN: usize = 1024;
const INTERMEDIATE: usize = 3072;
const HEADS: usize = 16;
const KV_HEADS: usize = 8;
const HEAD_DIM: usize = 128;

/// A GGUF file of the shape with matrices in `dtype`.
fn write(path: &Path, dtype: GgmlDType, args: &Args) -> anyhow::Result<()> {
    let device = CandleDevice::Cpu;
    let matrix = |rows: usize, cols: usize| -> anyhow::Result<QTensor> {
        let t = Tensor::randn(0f32, 0.02, (rows, cols), &device)?;
        Ok(QTensor::quantize(&t, dtype)?)
    };
    let ones = |n: usize| -> anyhow::Result<QTensor> {
        Ok(QTensor::quantize(
            &Tensor::ones(n, candle_core::DType::F32, &device)?,
            GgmlDType::F32,
        )?)
    };
    let mut tensors = vec![
        ("token_embd.weight".to_string(), matrix(args.vocab, HIDDEN)?),
        ("output_norm.weight".to_string(), ones(HIDDEN)?),
    ];
    for i in 0..args.layers {
        let b = |n: &str| format!("blk.{i}.{n}.weight");
        tensors.push((b("attn_norm"), ones(HIDDEN)?));
        tensors.push((b("attn_q"), matrix(HEADS * HEAD_DIM, HIDDEN)?));
        tensors.push((b("attn_k"), matrix(KV_HEADS * HEAD_DIM, HIDDEN)?));
        tensors.push((b("attn_v"), matrix(KV_HEADS * HEAD_DIM, HIDDEN)?));
        tensors.push((b("attn_output"), matrix(HIDDEN, HEADS * HEAD_DIM)?));
        tensors.push((b("attn_q_norm"), ones(HEAD_DIM)?));
        tensors.push((b("attn_k_norm"), ones(HEAD_DIM)?));
        tensors.push((b("ffn_norm"), ones(HIDDEN)?));
        tensors.push((b("ffn_gate"), matrix(INTERMEDIATE, HIDDEN)?));
        tensors.push((b("ffn_up"), matrix(INTERMEDIATE, HIDDEN)?));
        tensors.push((b("ffn_down"), matrix(HIDDEN, INTERMEDIATE)?));
    }
    // A vocabulary that holds the end token Qwen3 needs; inputs are token ids.
    let mut tokens = vec![Value::String("<|endoftext|>".into())];
    tokens.extend((1..args.vocab).map(|i| Value::String(format!("t{i}"))));
    let mut types = vec![Value::I32(3)];
    types.extend((1..args.vocab).map(|_| Value::I32(1)));
    let u32v = |v: usize| Value::U32(v as u32);
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("qwen3".into())),
        ("qwen3.context_length", u32v(32768)),
        ("qwen3.embedding_length", u32v(HIDDEN)),
        ("qwen3.block_count", u32v(args.layers)),
        ("qwen3.feed_forward_length", u32v(INTERMEDIATE)),
        ("qwen3.attention.head_count", u32v(HEADS)),
        ("qwen3.attention.head_count_kv", u32v(KV_HEADS)),
        ("qwen3.attention.key_length", u32v(HEAD_DIM)),
        ("qwen3.attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
        ("qwen3.rope.freq_base", Value::F32(1e6)),
        ("qwen3.pooling_type", u32v(3)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("qwen2".into())),
        ("tokenizer.ggml.tokens", Value::Array(tokens)),
        ("tokenizer.ggml.token_type", Value::Array(types)),
        ("tokenizer.ggml.merges", Value::Array(Vec::new())),
        ("tokenizer.ggml.eos_token_id", u32v(0)),
        ("tokenizer.ggml.add_eos_token", Value::Bool(true)),
    ];
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let partial = path.with_extension("partial");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&partial)?);
    gguf_file::write(&mut file, &metadata, &tensors)?;
    drop(file);
    std::fs::rename(&partial, path)?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let types = [GgmlDType::F32, GgmlDType::Q8_0, GgmlDType::Q4K];
    let mut models = Vec::new();
    for dtype in types {
        let path = args
            .dir
            .join(format!("qwen3-0.6b-shape-{}l-{dtype:?}.gguf", args.layers));
        if !path.exists() {
            eprintln!("writing {}", path.display());
            write(&path, dtype, &args).with_context(|| path.display().to_string())?;
        }
        let size = std::fs::metadata(&path)?.len();
        let embedder = Embedder::load(
            path.to_str().context("path")?,
            Options::default()
                .with_device(Device::Cpu)
                .with_max_batch_tokens(args.texts * (args.tokens + 1)),
        )?;
        models.push((dtype, size, embedder));
    }
    // The same ids for every type; the end token is appended by none (ids go in as given).
    let ids: Vec<Vec<u32>> = (0..args.texts)
        .map(|t| {
            (0..args.tokens)
                .map(|i| 1 + ((t * 7919 + i * 104_729) % (args.vocab - 1)) as u32)
                .collect()
        })
        .collect();
    let tokens = (args.texts * args.tokens) as f64;
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); models.len()];
    for _ in 0..=args.reps {
        for (m, (_, _, embedder)) in models.iter().enumerate() {
            let start = Instant::now();
            embedder.embed_with(&TokenIds(&ids), &Request::default())?;
            seconds[m].push(start.elapsed().as_secs_f64());
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{} layers, {} inputs x {} tokens, {} timed passes per type (after one warm-up); load average {}",
        args.layers,
        args.texts,
        args.tokens,
        args.reps,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let median = |s: &[f64]| {
        let mut s = s[1..].to_vec();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    let f32_rate = tokens / median(&seconds[0]);
    for ((dtype, size, _), s) in models.iter().zip(&seconds) {
        let rate = tokens / median(s);
        println!(
            "{:5} {:>8.1} MiB  {:>8.1} tokens/s  x{:.2} of F32  (passes: {})",
            format!("{dtype:?}"),
            *size as f64 / (1 << 20) as f64,
            rate,
            rate / f32_rate,
            s[1..]
                .iter()
                .map(|v| format!("{v:.2}s"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
