//! Embed the texts of a PostgreSQL table into a pgvector column: its own or a separate
//! table's, in one scan or as one of many workers draining a queue.
//!
//! ```sh
//! # Every row whose text is set and vector missing or stale (its text changed), in id order;
//! # a rerun continues. `in-place` is another name for `scan`.
//! cargo run --release --features postgres --example embed_table -- scan \
//!     --db "host=/run/postgresql dbname=shop" --table reviews --id id --text body \
//!     --vector embedding --model bge-m3
//! # The same, the vectors upserted into review_vectors (id, embedding, run, hash) instead.
//! cargo run --release --features postgres --example embed_table -- scan \
//!     --db "host=/run/postgresql dbname=shop" --table reviews --id id --text body \
//!     --vector embedding --vector-table review_vectors --model bge-m3
//! # Queue mode: create and fill the queue once, then start workers anywhere.
//! cargo run --release --features postgres --example embed_table -- queue --create --enqueue \
//!     --db "host=/run/postgresql dbname=shop" --table reviews --id id --text body \
//!     --vector embedding --model bge-m3
//! ```
//!
//! `queue` drains the queue and exits; with `--follow` it waits for new work (filled by a
//! trigger, see the README) and polls every `--poll` seconds. A one-line summary goes to stderr.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use rembed::pg::{self, QueueOptions, ScanOptions, Target, Worker};
use rembed::{Embedder, Options, Precision};

#[derive(Parser)]
#[command(about = "Embed a PostgreSQL table's texts into its pgvector column")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Keyset pagination over the id; vectors written one transaction per batch.
    #[command(alias = "in-place")]
    Scan {
        #[command(flatten)]
        common: Common,
        /// Stop after this many batches (a rerun continues).
        #[arg(long)]
        max_batches: Option<usize>,
    },
    /// Claim ids from a queue table under a lease, embed them, mark them done or failed.
    Queue {
        #[command(flatten)]
        common: Common,
        /// The queue table.
        #[arg(long, default_value = "rembed_queue")]
        queue: String,
        /// Create the queue table if missing.
        #[arg(long)]
        create: bool,
        /// Queue every row whose text is set and vector missing or stale.
        #[arg(long)]
        enqueue: bool,
        /// Lease in seconds; must outlast one batch.
        #[arg(long, default_value_t = 600)]
        lease: u64,
        /// Keep polling for new work instead of exiting when the queue is empty.
        #[arg(long)]
        follow: bool,
        /// Seconds between polls with --follow.
        #[arg(long, default_value_t = 5)]
        poll: u64,
    },
}

#[derive(Args)]
struct Common {
    /// Connection string: `host=... dbname=...` or `postgresql://user@host/db`.
    #[arg(long)]
    db: String,
    /// `table` or `schema.table`.
    #[arg(long)]
    table: String,
    /// Unique, ordered id column.
    #[arg(long, default_value = "id")]
    id: String,
    /// Text column.
    #[arg(long)]
    text: String,
    /// pgvector `vector(n)` or `halfvec(n)`, or `real[]` column.
    #[arg(long)]
    vector: String,
    /// Write vectors to this table (id, vector, run, hash; created if missing) instead of
    /// the source table.
    #[arg(long)]
    vector_table: Option<String>,
    /// SQL condition on the rows to embed, e.g. "lang = 'en'".
    #[arg(long)]
    filter: Option<String>,
    /// Registry name or alias, Hugging Face repo id, or model directory.
    #[arg(long)]
    model: String,
    /// auto, cpu, cuda, cuda:N, or a comma-separated list (one replica each).
    #[arg(long, default_value = "auto")]
    device: String,
    /// auto, f32, f16 or bf16.
    #[arg(long, default_value = "auto")]
    dtype: String,
    /// Rows per batch and transaction.
    #[arg(long, default_value_t = 256)]
    batch_rows: usize,
}

impl Common {
    fn target(&self) -> Target {
        let mut target = Target::new(&self.table, &self.id, &self.text, &self.vector);
        if let Some(filter) = &self.filter {
            target = target.with_filter(filter);
        }
        if let Some(table) = &self.vector_table {
            target = target.with_vector_table(table);
        }
        target
    }

    fn load(&self) -> anyhow::Result<Embedder> {
        let options = Options::default()
            .with_devices(rembed::parse_devices(&self.device)?)
            .with_precision(self.dtype.parse::<Precision>()?);
        Embedder::load(&self.model, options).with_context(|| format!("loading {}", self.model))
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let start = Instant::now();
    let report = match Cli::parse().mode {
        Mode::Scan {
            common,
            max_batches,
        } => {
            // Connection checked before the model loads, so a typo fails in a second.
            pg::connect(&common.db)?;
            let embedder = common.load()?;
            let mut options = ScanOptions::default().with_batch_rows(common.batch_rows);
            if let Some(batches) = max_batches {
                options = options.with_max_batches(batches);
            }
            pg::embed_table(&embedder, &common.db, &common.target(), &options)?
        }
        Mode::Queue {
            common,
            queue,
            create,
            enqueue,
            lease,
            follow,
            poll,
        } => {
            if create {
                pg::create_queue(&common.db, &queue)?;
            }
            pg::connect(&common.db)?;
            let embedder = common.load()?;
            let options = QueueOptions::default()
                .with_queue(&queue)
                .with_batch_rows(common.batch_rows)
                .with_lease(Duration::from_secs(lease));
            let mut worker = Worker::new(&embedder, &common.db, &common.target(), options)?;
            if enqueue {
                let added = worker.enqueue_missing()?;
                eprintln!("queued {added} rows in {queue}");
            }
            loop {
                worker.drain()?;
                if !follow {
                    break;
                }
                std::thread::sleep(Duration::from_secs(poll));
            }
            worker.finish()?
        }
    };
    for (id, reason) in report.failed.iter().take(20) {
        eprintln!("id {id}: {reason}");
    }
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "run {}: {} rows written, {} failed, {} batches, {} expired leases reclaimed, {seconds:.1} s",
        report.run,
        report.written,
        report.failed.len(),
        report.batches,
        report.reclaimed,
    );
    Ok(())
}
