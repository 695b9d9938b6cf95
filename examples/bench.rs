//! Throughput of one model on one workload: tokens/s, texts/s, model FLOP utilisation, peak GPU
//! memory and what a corpus would cost. Prints a readable line and one JSON line (the same keys
//! as `scripts/bench_transformers.py`, which runs PyTorch on the same token ids).
//!
//! ```text
//! cargo run --release --example bench -- --random-weights qwen3-embedding-8b \
//!     --workload fixed:512 --texts 2048 --device cuda --price-per-hour 2.5
//! cargo run --release --example bench -- --model all-minilm-l6-v2 --workload mix --device cpu
//! ```
//!
//! Workloads: `fixed:N` (every input N tokens), `mix` (chat-chunk lengths, log-normal between 16
//! and 2048 tokens, median 256), `file:PATH` (one text per line, tokenized by the model, timed
//! end to end), `ids:PATH` (a JSON list of token-id lists, as `--save-ids` writes). Synthetic
//! inputs are seeded, so two runs (and the PyTorch script, through `--save-ids`) see the same ids.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use rembed::{gpu_memory, parse_devices, Embedder, Options, Precision, Request, TokenIds};

#[derive(Parser)]
struct Args {
    /// Registry name, Hugging Face repo id or local directory.
    #[arg(long, conflicts_with = "random_weights")]
    model: Option<String>,
    /// A registry model's exact architecture with seeded random weights.
    #[arg(long)]
    random_weights: Option<String>,
    /// fixed:N, mix, file:PATH or ids:PATH.
    #[arg(long, default_value = "fixed:512")]
    workload: String,
    /// Inputs to embed (synthetic workloads; a file's inputs are cycled or cut to this many).
    #[arg(long, default_value_t = 1024)]
    texts: usize,
    /// cpu, cuda, cuda:N, auto, or a comma-separated list (one replica each).
    #[arg(long, default_value = "auto")]
    device: String,
    /// auto, bf16, f16 or f32.
    #[arg(long, default_value = "auto")]
    dtype: String,
    /// Padded tokens per forward pass (default: rembed's, 16,384 on CUDA).
    #[arg(long)]
    max_batch_tokens: Option<usize>,
    /// Seed of the synthetic inputs and of random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Dollars per hour of the machine, for cost figures.
    #[arg(long)]
    price_per_hour: Option<f64>,
    /// Tokens of a corpus to estimate the time and cost of.
    #[arg(long, default_value_t = 1_000_000_000)]
    corpus_tokens: u64,
    /// Dense peak of the device in TFLOP/s for MFU (default: 989 for bf16/f16 on an H100 or
    /// H200, none otherwise).
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// Write the workload's token ids here as JSON (for the PyTorch script).
    #[arg(long)]
    save_ids: Option<PathBuf>,
    /// Write the embeddings here as .npy, in input order.
    #[arg(long)]
    save_embeddings: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut options = Options::default()
        .with_devices(parse_devices(&args.device)?)
        .with_precision(args.dtype.parse::<Precision>()?);
    if let Some(tokens) = args.max_batch_tokens {
        options = options.with_max_batch_tokens(tokens);
    }
    let load_start = Instant::now();
    let (embedder, model) = match (&args.model, &args.random_weights) {
        (Some(model), None) => (Embedder::load(model, options)?, model.clone()),
        (None, Some(name)) => (
            Embedder::random_weights(name, args.seed, options)?,
            format!("{name} (random weights)"),
        ),
        _ => bail!("give --model or --random-weights"),
    };
    let load_seconds = load_start.elapsed().as_secs_f64();

    let inputs = workload(&args, &embedder)?;
    if let Some(path) = &args.save_ids {
        if let Inputs::Ids(ids) = &inputs {
            std::fs::write(path, serde_json::to_string(ids)?)
                .with_context(|| path.display().to_string())?;
        }
    }
    let lengths: Vec<usize> = match &inputs {
        Inputs::Ids(ids) => ids.iter().map(Vec::len).collect(),
        Inputs::Texts(texts) => embedder
            .tokenize(texts, &Request::documents())?
            .iter()
            .map(Vec::len)
            .collect(),
    };
    let tokens: usize = lengths.iter().sum();
    let run = |inputs: &Inputs| match inputs {
        Inputs::Ids(ids) => embedder
            .embed_with(&TokenIds(ids), &Request::default())
            .map(|e| e.dense),
        Inputs::Texts(texts) => embedder.embed(texts),
    };

    // Warm-up: kernels compiled and loaded, memory pool grown, on the longest inputs.
    let warmup = inputs.longest(16, &lengths);
    run(&warmup)?;
    // Rows come back to the host, so the device has finished when a call returns.
    gpu_memory::reset_peak(&embedder);
    let start = Instant::now();
    let embeddings = run(&inputs)?;
    let seconds = start.elapsed().as_secs_f64();
    let peak = gpu_memory::usage(&embedder)
        .into_iter()
        .flatten()
        .map(|m| m.peak)
        .max();
    let finite = embeddings.iter().all(|v| v.is_finite());
    if let Some(path) = &args.save_embeddings {
        ndarray_npy::write_npy(path, &embeddings).with_context(|| path.display().to_string())?;
    }

    let tokens_per_s = tokens as f64 / seconds;
    let flops = embedder.flops();
    let flop = Some(lengths.iter().map(|&l| flops.per_sequence(l)).sum::<f64>());
    let gpu = gpu_memory::device_names(&embedder)
        .into_iter()
        .flatten()
        .next();
    let peak_tflops = args.peak_tflops.or_else(|| {
        let half = matches!(embedder.precision(), Precision::BF16 | Precision::F16);
        let hopper = gpu
            .as_deref()
            .is_some_and(|n| n.contains("H100") || n.contains("H200"));
        (half && hopper).then_some(989.0)
    });
    let mfu = match (flop, peak_tflops) {
        (Some(flop), Some(peak)) => Some(flop / seconds / (peak * 1e12)),
        _ => None,
    };
    let usd_per_million = args
        .price_per_hour
        .map(|p| p / (tokens_per_s * 3600.0) * 1e6);
    let corpus_hours = args.corpus_tokens as f64 / tokens_per_s / 3600.0;

    let report = serde_json::json!({
        "system": "rembed",
        "model": model,
        "workload": args.workload,
        "device": gpu.clone().unwrap_or_else(|| format!("{:?}", embedder.devices())),
        "replicas": embedder.devices().len(),
        "dtype": embedder.precision().as_str(),
        "max_batch_tokens": args.max_batch_tokens,
        "texts": lengths.len(),
        "tokens": tokens,
        "seconds": seconds,
        "load_seconds": load_seconds,
        "tokens_per_s": tokens_per_s,
        "texts_per_s": lengths.len() as f64 / seconds,
        "gflop_per_token": flop.map(|f| f / tokens as f64 / 1e9),
        "mfu": mfu,
        "peak_memory_gib": peak.map(|b| b as f64 / (1u64 << 30) as f64),
        "usd_per_million_tokens": usd_per_million,
        "corpus_tokens": args.corpus_tokens,
        "corpus_hours": corpus_hours,
        "corpus_usd": args.price_per_hour.map(|p| p * corpus_hours),
        "finite": finite,
    });
    println!(
        "{model} {workload}: {tokens} tokens in {seconds:.2} s = {tokens_per_s:.0} tokens/s, \
         {texts_per_s:.1} texts/s, MFU {mfu}, peak GPU memory {peak}, corpus of {corpus} tokens \
         {corpus_hours:.2} h",
        workload = args.workload,
        texts_per_s = lengths.len() as f64 / seconds,
        mfu = mfu.map_or("n/a".into(), |m| format!("{:.1}%", m * 100.0)),
        peak = peak.map_or("n/a".into(), |b| format!(
            "{:.2} GiB",
            b as f64 / (1u64 << 30) as f64
        )),
        corpus = args.corpus_tokens,
    );
    println!("{report}");
    if !finite {
        bail!("the embeddings hold NaN or infinity");
    }
    Ok(())
}

/// What is timed: token ids (synthetic or saved), or texts the model tokenizes itself.
enum Inputs {
    Ids(Vec<Vec<u32>>),
    Texts(Vec<String>),
}

impl Inputs {
    /// The `count` longest inputs, for the warm-up.
    fn longest(&self, count: usize, lengths: &[usize]) -> Inputs {
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        order.truncate(count);
        match self {
            Inputs::Ids(ids) => Inputs::Ids(order.iter().map(|&i| ids[i].clone()).collect()),
            Inputs::Texts(t) => Inputs::Texts(order.iter().map(|&i| t[i].clone()).collect()),
        }
    }
}

fn workload(args: &Args, embedder: &Embedder) -> anyhow::Result<Inputs> {
    let max_length = embedder.spec().max_length;
    let vocab = embedder.vocab_size() as u64;
    let mut rng = SplitMix(args.seed);
    let synthetic = |lengths: Vec<usize>, rng: &mut SplitMix| -> Inputs {
        // Ids above the first thousand avoid special tokens in every registry vocabulary.
        let low = 1000.min(vocab / 2);
        Inputs::Ids(
            lengths
                .into_iter()
                .map(|len| {
                    (0..len.min(max_length))
                        .map(|_| (low + rng.next() % (vocab - low)) as u32)
                        .collect()
                })
                .collect(),
        )
    };
    let spec = args.workload.as_str();
    if let Some(n) = spec.strip_prefix("fixed:") {
        let len: usize = n.parse().context("fixed:N needs a token count")?;
        return Ok(synthetic(vec![len; args.texts], &mut rng));
    }
    if spec == "mix" {
        let lengths = (0..args.texts)
            .map(|_| {
                let normal = rng.normal();
                (256f64 * (0.9 * normal).exp()).clamp(16.0, 2048.0) as usize
            })
            .collect();
        return Ok(synthetic(lengths, &mut rng));
    }
    if let Some(path) = spec.strip_prefix("ids:") {
        let text = std::fs::read_to_string(path).with_context(|| path.to_string())?;
        return Ok(Inputs::Ids(
            serde_json::from_str(&text).context(path.to_string())?,
        ));
    }
    if let Some(path) = spec.strip_prefix("file:") {
        let text = std::fs::read_to_string(path).with_context(|| path.to_string())?;
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect();
        if lines.is_empty() {
            bail!("{path} has no text");
        }
        let texts: Vec<String> = lines.iter().cycle().take(args.texts).cloned().collect();
        // Token ids too, so that --save-ids hands PyTorch exactly what rembed embeds.
        if args.save_ids.is_some() {
            return Ok(Inputs::Ids(
                embedder.tokenize(&texts, &Request::documents())?,
            ));
        }
        return Ok(Inputs::Texts(texts));
    }
    bail!("unknown workload `{spec}`: expected fixed:N, mix, file:PATH or ids:PATH")
}

/// A small seeded generator (splitmix64), so workloads are the same on every machine.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A standard normal draw (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}
