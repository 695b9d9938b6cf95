//! Embed a JSONL corpus into a directory of Parquet files: resumable after a crash or `kill -9`,
//! deduplicated by id, with a progress bar, shardable across machines.
//!
//! ```sh
//! # Records like {"id": "...", "text": "...", "any": "metadata"}:
//! cargo run --release --features job --example embed_corpus -- \
//!     --model all-minilm-l6-v2 --input corpus.jsonl --output vectors/
//! # The chunk JSONL of chunk_messages, on a GPU, with the cost at $2.50/h:
//! cargo run --release --features job,cuda --example embed_corpus -- \
//!     --model qwen3-embedding:0.6b --input chunks.jsonl --output vectors/ \
//!     --id-field chunk_id --text-field text --device cuda --dtype bf16 --price-per-hour 2.5
//! # Shard 3 of 8 (`--shard auto/8` in a Kubernetes Indexed Job, `--shard
//! # "$SLURM_ARRAY_TASK_ID/8"` in a Slurm array, which also reruns one task; see deploy/):
//! cargo run --release --features job --example embed_corpus -- \
//!     --model all-minilm-l6-v2 --input corpus.jsonl --output vectors/ --shard 3/8
//! # Once every shard has finished: is the union complete and duplicate-free?
//! cargo run --release --features job --example embed_corpus -- verify --output vectors/
//! ```
//!
//! Running the same command again resumes: ids already in `--output` are skipped. Read the
//! result with `pyarrow.parquet.read_table("vectors/")` or
//! `polars.read_parquet("vectors/*.parquet")`; `vectors/_manifest*.json` holds the provenance
//! and the reconciliation.
//!
//! Exit status: 0 when every record was embedded or skipped as a duplicate, empty text or
//! another shard's, and the counts add up; 2 when the run finished but some records were
//! malformed, failed or had an ambiguous id (each listed with id and reason in
//! `_not_embedded*.jsonl`; running again retries the failed ones); 1 on an error, counts that do
//! not add up, or nothing embedded from a non-empty input; 143 (SIGTERM) or 130 (SIGINT) when a
//! signal stopped the run after its batch in flight, with the work so far saved. `verify` exits
//! 0 only when the output is complete and duplicate-free.
//!
//! Log lines go to stderr, without colours when it is not a terminal; a line every
//! `--log-every` seconds says how far the run is.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rembed::job::{self, Shard};
use rembed::{Embedder, Options, Precision};

#[derive(Parser)]
#[command(
    about = "Embed a JSONL corpus into Parquet files, resumably",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Check that the shards' union is complete against the input and duplicate-free.
    Verify {
        /// The output directory all shards wrote to.
        #[arg(long)]
        output: PathBuf,
        /// The input; by default the path recorded in the manifests.
        #[arg(long)]
        input: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Registry name or alias, Hugging Face repo id, or model directory.
    #[arg(long, required = true)]
    model: Option<String>,
    /// JSONL file, one record per line.
    #[arg(long, required = true)]
    input: Option<PathBuf>,
    /// Directory for the Parquet part files and the manifest (created if missing).
    #[arg(long, required = true)]
    output: Option<PathBuf>,
    /// Field holding each record's unique id.
    #[arg(long, default_value = "id")]
    id_field: String,
    /// Field holding each record's text; all other fields are kept as metadata.
    #[arg(long, default_value = "text")]
    text_field: String,
    /// Records per part file: the output is made durable this often.
    #[arg(long, default_value_t = 10_000)]
    checkpoint_every: usize,
    /// Records per model call.
    #[arg(long, default_value_t = 4096)]
    batch_records: usize,
    /// Seconds between progress lines in the log.
    #[arg(long, default_value_t = 30.0)]
    log_every: f64,
    /// I/N (0-based), auto/N (index from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID) or auto
    /// (a whole Slurm array). To rerun one array task: --shard "$SLURM_ARRAY_TASK_ID/N".
    #[arg(long)]
    shard: Option<String>,
    /// auto, cpu, cuda, cuda:N, or a comma-separated list (one replica each).
    #[arg(long, default_value = "auto")]
    device: String,
    /// auto, f32, f16 or bf16.
    #[arg(long, default_value = "auto")]
    dtype: String,
    /// Output dimension (Matryoshka models).
    #[arg(long)]
    dim: Option<usize>,
    /// Machine price in USD per hour, for the cost so far and projected.
    #[arg(long)]
    price_per_hour: Option<f64>,
}

fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,rembed::job=info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a cluster's log file.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    if let Some(Command::Verify { output, input }) = cli.command {
        let report = job::verify(&output, input.as_deref())?;
        print(&mut std::io::stdout(), &report)?;
        return Ok(if report.ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }

    let args = cli.run;
    let (Some(model), Some(input), Some(output)) = (args.model, args.input, args.output) else {
        anyhow::bail!("--model, --input and --output are required");
    };
    anyhow::ensure!(
        args.log_every.is_finite() && args.log_every > 0.0,
        "--log-every must be a positive number of seconds"
    );
    let shard = Shard::from_env(args.shard.as_deref())?;
    let mut options = Options::default()
        .with_devices(rembed::parse_devices(&args.device)?)
        .with_precision(args.dtype.parse::<Precision>()?);
    if let Some(dim) = args.dim {
        options = options.with_dim(dim);
    }
    let embedder = Embedder::load(&model, options).with_context(|| format!("loading {model}"))?;
    let mut config = job::Config::new(input, output)
        .with_id_field(args.id_field)
        .with_text_field(args.text_field)
        .with_checkpoint_every(args.checkpoint_every)
        .with_batch_records(args.batch_records)
        .with_log_every(Duration::from_secs_f64(args.log_every))
        .with_model_source(&model)
        .with_stop_on_signals(true)
        .with_shard(shard);
    if let Some(price) = args.price_per_hour {
        config = config.with_price_per_hour(price);
    }

    let report = job::run(&embedder, &config)?;
    print(&mut std::io::stderr(), &report)?;
    Ok(if let Some(signal) = report.stopped_by {
        ExitCode::from(signal.exit_code())
    } else if report.all_embedded() {
        ExitCode::SUCCESS
    } else if report.balanced() && !report.embedded_nothing() {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    })
}

/// Writes a report; a reader that went away (`verify ... | head`) is no error, where `println!`
/// would panic on the broken pipe.
fn print(out: &mut impl Write, report: &impl std::fmt::Display) -> anyhow::Result<()> {
    match writeln!(out, "{report}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
