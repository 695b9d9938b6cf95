//! Embed text files from the command line: one text per line in, vectors out.
//!
//! ```sh
//! cargo run --release --example embed -- --model all-minilm-l6-v2 --input examples/sample.txt --output vectors.npy
//! ```
//!
//! `--output` ending in `.npy` (any case) writes a float32 C-order `[n, dim]` array; `.jsonl` (or
//! stdout when omitted) writes one JSON array per line; any other name needs `--format`. The
//! output is checked before the model loads and replaced only once every vector is written and
//! finite: a failed run leaves an earlier file as it was. A one-line summary goes to stderr.
//!
//! Texts longer than the model reads are truncated unless `--long` is given: `--long mean`
//! splits them into chunks that fit and writes each text's mean vector; `--long chunks` (JSONL
//! only) writes one line per chunk, `{"line": 1, "start": 0, "end": 812, "vector": [...]}`,
//! with the chunk's byte range in its line.

#[path = "common/output.rs"]
mod output;

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use ndarray::Array2;
use ndarray_npy::WriteNpyExt;
use output::{non_finite_rows, Format, Output};
use rembed::{Embedder, Embeddings, LongText, Options, Precision, Request};

#[derive(Parser)]
#[command(about = "Embed one text per line with a rembed model")]
struct Args {
    /// Registry name or alias, Hugging Face repo id, or model directory.
    #[arg(long)]
    model: String,
    /// Text file, one text per line (every line is a text); `-` reads stdin.
    #[arg(long)]
    input: String,
    /// `.npy` or `.jsonl`; JSONL on stdout when omitted.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Format of `--output` whatever its name [default: from the extension].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Apply the model's query prompt instead of its document prompt.
    #[arg(long)]
    query: bool,
    /// Output dimension (Matryoshka models).
    #[arg(long)]
    dim: Option<usize>,
    /// auto, cpu, cuda, cuda:N, or a comma-separated list (one replica each).
    #[arg(long, default_value = "auto")]
    device: String,
    /// auto, f32, f16 or bf16.
    #[arg(long, default_value = "auto")]
    dtype: String,
    /// Padded tokens per forward pass.
    #[arg(long)]
    max_batch_tokens: Option<usize>,
    /// Truncate inputs to this many tokens.
    #[arg(long)]
    max_length: Option<usize>,
    /// Split texts longer than the max length into chunks instead of truncating them: `mean`
    /// writes each text's mean chunk vector, `chunks` one JSONL line per chunk.
    #[arg(long, value_enum)]
    long: Option<Long>,
    /// Tokens shared by consecutive chunks, with `--long`.
    #[arg(long, default_value_t = 0)]
    overlap_tokens: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Long {
    Mean,
    Chunks,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    // Checked before the model loads, so a bad path fails in a second, not after the embedding.
    let output = match &args.output {
        Some(path) => Some(Output::claim(
            path,
            args.format,
            &[Format::Npy, Format::Jsonl],
        )?),
        None if args.format == Some(Format::Npy) => {
            bail!("--format npy needs --output: NumPy arrays are not written to stdout")
        }
        None => None,
    };
    if args.long == Some(Long::Chunks)
        && output.as_ref().is_some_and(|o| o.format() != Format::Jsonl)
    {
        bail!("--long chunks writes JSONL (one line per chunk); NumPy cannot hold the ranges");
    }

    let mut options = Options::default()
        .with_devices(rembed::parse_devices(&args.device)?)
        .with_precision(args.dtype.parse::<Precision>()?);
    if let Some(tokens) = args.max_batch_tokens {
        options = options.with_max_batch_tokens(tokens);
    }
    if let Some(tokens) = args.max_length {
        options = options.with_max_length(tokens);
    }
    if let Some(dim) = args.dim {
        options = options.with_dim(dim);
    }
    let embedder = Embedder::load(&args.model, options)?;

    let mut text = String::new();
    if args.input == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading stdin")?;
    } else {
        text = std::fs::read_to_string(&args.input)
            .with_context(|| format!("reading {}", args.input))?;
    }
    let texts: Vec<&str> = text.lines().collect();

    let start = Instant::now();
    if args.query && embedder.resolve_prompt(&rembed::Prompt::Query)?.is_empty() {
        eprintln!(
            "note: `{}` has no query prompt, so --query embeds the lines as it embeds documents",
            embedder.spec().name
        );
    }
    let request = if args.query {
        Request::queries()
    } else {
        Request::documents()
    };
    let mut request = request.keep_going(true);
    if args.long.is_some() {
        request = request.with_long_text(LongText::Chunks {
            overlap_tokens: args.overlap_tokens,
        });
    }
    let result = embedder.embed_with(&texts, &request)?;
    let seconds = start.elapsed().as_secs_f64();

    // Failed inputs (not finite, out of memory) have zero rows: nothing is written rather than
    // vectors that look real.
    if !result.failures.is_empty() {
        for failure in result.failures.iter().take(20) {
            eprintln!("line {}: {}", failure.index + 1, failure.reason);
        }
        let indices: Vec<usize> = result.failures.iter().map(|f| f.index).take(20).collect();
        bail!(
            "{} of {} inputs could not be embedded (0-based input indices {indices:?}{}); nothing was written",
            result.failures.len(),
            texts.len(),
            if result.failures.len() > 20 { ", ..." } else { "" },
        );
    }
    let non_finite = non_finite_rows(result.dense.view());
    if !non_finite.is_empty() {
        for &index in non_finite.iter().take(20) {
            eprintln!(
                "line {}: the model returned NaN or infinite values",
                index + 1
            );
        }
        bail!(
            "{} of {} vectors are not finite (0-based input indices {:?}{}); nothing was written",
            non_finite.len(),
            texts.len(),
            &non_finite[..non_finite.len().min(20)],
            if non_finite.len() > 20 { ", ..." } else { "" },
        );
    }
    if args.long == Some(Long::Chunks) {
        write_chunks(&result, output)?;
    } else {
        write_output(&result.dense, output)?;
    }
    eprintln!(
        "model={} device={:?} dtype={} texts={} tokens={} truncated={} seconds={:.3} tokens/s={:.0}",
        embedder.spec().name,
        embedder.devices(),
        embedder.precision().as_str(),
        texts.len(),
        result.tokens,
        result.truncated,
        seconds,
        result.tokens as f64 / seconds.max(1e-9),
    );
    if !result.failures.is_empty() {
        for failure in &result.failures {
            eprintln!(
                "line {}: {} ({} tokens)",
                failure.index + 1,
                failure.reason,
                failure.tokens
            );
        }
        bail!(
            "{} of {} texts failed; their rows are zero",
            result.failures.len(),
            texts.len()
        );
    }
    Ok(())
}

fn write_output(embeddings: &Array2<f32>, output: Option<Output>) -> anyhow::Result<()> {
    match output {
        Some(output) => match output.format() {
            Format::Npy => output.commit(|out| Ok(embeddings.write_npy(out)?)),
            Format::Jsonl => output.commit(|out| write_jsonl(embeddings, out)),
        },
        None => write_jsonl(embeddings, &mut BufWriter::new(std::io::stdout().lock()))
            .context("writing stdout"),
    }
}

/// `--long chunks`: one JSONL line per chunk, in input order.
fn write_chunks(result: &Embeddings, output: Option<Output>) -> anyhow::Result<()> {
    let chunks = result
        .chunks
        .as_ref()
        .context("the embedder returned no chunks for --long chunks")?;
    let write = |out: &mut dyn Write| -> anyhow::Result<()> {
        for (index, text) in chunks.iter().enumerate() {
            for (range, vector) in text.ranges.iter().zip(text.vectors.rows()) {
                let line = serde_json::json!({
                    "line": index + 1,
                    "start": range.start,
                    "end": range.end,
                    "vector": vector.to_vec(),
                });
                serde_json::to_writer(&mut *out, &line)?;
                out.write_all(b"\n")?;
            }
        }
        out.flush()?;
        Ok(())
    };
    match output {
        Some(output) => output.commit(|out| write(out)),
        None => write(&mut BufWriter::new(std::io::stdout().lock())).context("writing stdout"),
    }
}

fn write_jsonl(embeddings: &Array2<f32>, out: &mut dyn Write) -> anyhow::Result<()> {
    for row in embeddings.rows() {
        serde_json::to_writer(&mut *out, &row.to_vec())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
