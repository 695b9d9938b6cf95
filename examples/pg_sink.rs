//! Sink throughput alone: how many rows/s `rembed::pg` writes into PostgreSQL, with vectors
//! made beforehand so that no model runs while the clock does. Each mode gets a fresh table of
//! `--rows` texts and `vector(--dim)` (or `halfvec`) column, and goes through the library's own
//! path: binary COPY into the batch table, then `UPDATE ... FROM` (in place) or an upsert (a
//! separate table), one transaction per `--batch-rows` rows with the run's counts; and the
//! queue (claim under a lease, write, mark done).
//!
//! ```sh
//! cargo run --release --features postgres --example pg_sink -- \
//!     --db "host=/tmp/pg port=5432 user=postgres dbname=postgres" --rows 100000 --dim 1024
//! ```
//!
//! Prints one line per mode: rows, seconds, rows/s, MB/s of vector data. Drops and recreates
//! the tables `sink_*` and the queue `sink_queue`.

use std::time::{Duration, Instant};

use clap::Parser;
use rembed::pg::{self, Embedded, QueueOptions, RunInfo, Target, Worker, Writer};

#[derive(Parser)]
#[command(about = "Time rembed::pg's writes alone, with precomputed vectors")]
struct Cli {
    /// Connection string.
    #[arg(long)]
    db: String,
    /// Rows per mode.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 1024)]
    dim: usize,
    /// Rows per transaction (the library's default is 256).
    #[arg(long, default_value_t = 256)]
    batch_rows: usize,
}

fn text(i: usize) -> String {
    format!("review {i}: the product does what it says")
}

/// Unit vectors from a xorshift generator: any values do, the sink never looks at them.
fn vectors(rows: usize, dim: usize) -> Vec<Embedded> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..rows)
        .map(|i| {
            let v: Vec<f32> = (0..dim)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            Embedded::new(
                i.to_string(),
                &text(i),
                v.iter().map(|x| x / norm).collect(),
            )
        })
        .collect()
}

/// A fresh `table (id bigint PRIMARY KEY, body text, embedding <vector_type>)` of `rows` texts.
fn table(db: &str, table: &str, vector_type: &str, rows: usize) -> anyhow::Result<()> {
    let mut client = pg::connect(db)?;
    client.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}, {table}_vectors;
         CREATE TABLE {table} (id bigint PRIMARY KEY, body text, embedding {vector_type});
         INSERT INTO {table} SELECT i, 'review ' || i || ': the product does what it says'
             FROM generate_series(0, {last}) i",
        last = rows - 1,
    ))?;
    client.batch_execute(&format!("VACUUM ANALYZE {table}"))?;
    Ok(())
}

fn report(mode: &str, rows: u64, elapsed: Duration, dim: usize, bytes_per_value: usize) {
    let seconds = elapsed.as_secs_f64();
    println!(
        "{mode:<28} {rows:>8} rows {seconds:>7.2} s {:>9.0} rows/s {:>7.1} MB/s",
        rows as f64 / seconds,
        (rows as usize * dim * bytes_per_value) as f64 / seconds / 1e6,
    );
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let info = RunInfo::new("precomputed", cli.dim);
    let data = vectors(cli.rows, cli.dim);
    let dim = cli.dim;

    for (mode, name, vector_type, bytes, apart) in [
        (
            "in place, vector",
            "sink_in_place",
            format!("vector({dim})"),
            4,
            false,
        ),
        (
            "in place, halfvec",
            "sink_half",
            format!("halfvec({dim})"),
            2,
            false,
        ),
        (
            "separate table, upsert",
            "sink_apart",
            format!("vector({dim})"),
            4,
            true,
        ),
    ] {
        table(&cli.db, name, &vector_type, cli.rows)?;
        let mut target = Target::new(name, "id", "body", "embedding");
        if apart {
            target = target.with_vector_table(format!("{name}_vectors"));
        }
        let mut writer = Writer::open(&cli.db, &target, &info)?;
        let start = Instant::now();
        let mut written = 0;
        for batch in data.chunks(cli.batch_rows) {
            written += writer.write(batch.to_vec())?;
        }
        let elapsed = start.elapsed();
        writer.finish()?;
        anyhow::ensure!(written as usize == cli.rows, "{mode}: wrote {written}");
        report(mode, written, elapsed, dim, bytes);
    }

    table(
        &cli.db,
        "sink_queue_table",
        &format!("vector({dim})"),
        cli.rows,
    )?;
    pg::connect(&cli.db)?.batch_execute("DROP TABLE IF EXISTS sink_queue")?;
    pg::create_queue(&cli.db, "sink_queue")?;
    let target = Target::new("sink_queue_table", "id", "body", "embedding");
    let options = QueueOptions::default()
        .with_queue("sink_queue")
        .with_batch_rows(cli.batch_rows);
    let mut worker = Worker::for_vectors(&cli.db, &target, &info, options)?;
    let start = Instant::now();
    let queued = worker.enqueue_missing()?;
    report("queue: enqueue", queued, start.elapsed(), dim, 0);
    let start = Instant::now();
    let mut written = 0;
    loop {
        let ids = worker.claim(cli.batch_rows)?;
        if ids.is_empty() {
            break;
        }
        let done = ids
            .iter()
            .map(|id| Ok(data[id.parse::<usize>()?].clone()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        written += worker.complete(done, Vec::new())?;
    }
    let elapsed = start.elapsed();
    worker.finish()?;
    anyhow::ensure!(written as usize == cli.rows, "queue: wrote {written}");
    report("queue: claim + write + done", written, elapsed, dim, 4);
    Ok(())
}
