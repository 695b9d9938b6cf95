//! Turn a chat archive into conversation chunks ready to embed, one JSON object per line.
//!
//! ```sh
//! cargo run --release --example chunk_messages -- --input tests/fixtures/messenger --output chunks.jsonl --stats
//! ```
//!
//! `--input` is a Messenger export folder (searched recursively for `message_*.json`), one such
//! file, or a `.jsonl` of messages. Settings left out keep the library's defaults (see
//! `rembed::chunk::ChatChunker`). `--output` must end in `.jsonl` (any case) unless `--format jsonl`
//! is given; it is checked before anything is read, and replaced only once every chunk is
//! written, so a failed run leaves an earlier file as it was.

#[path = "common/output.rs"]
mod output;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use output::{Format, Output};
use rembed::chunk::{read_messages, write_chunks_jsonl, ChatChunker, DropReason, Stats};

#[derive(Parser)]
#[command(about = "Group chat messages into conversation chunks for embedding")]
struct Args {
    /// Export folder, `message_N.json` file, or `.jsonl` of messages.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the chunks, one JSON object per line (`.jsonl`).
    #[arg(long)]
    output: PathBuf,
    /// Write JSONL whatever the name of `--output` (the only format) [default: from the extension].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Longest pause between two messages of one sender that still merges them [library: 120].
    #[arg(long)]
    coalesce_secs: Option<u64>,
    /// Most characters in a merged turn; 0 turns merging off [library: 500].
    #[arg(long)]
    coalesce_chars: Option<usize>,
    /// A longer pause starts a new session [library: 7200].
    #[arg(long)]
    session_gap_secs: Option<u64>,
    /// Most turns per chunk [library: 30].
    #[arg(long)]
    window: Option<usize>,
    /// Turns shared by consecutive chunks [library: 10].
    #[arg(long)]
    overlap: Option<usize>,
    /// Most characters per chunk [library: 6000].
    #[arg(long)]
    max_chars: Option<usize>,
    /// Print what each step kept and dropped to stderr.
    #[arg(long)]
    stats: bool,
}

impl Args {
    fn chunker(&self) -> ChatChunker {
        let mut chunker = ChatChunker::default();
        if let Some(secs) = self.coalesce_secs {
            chunker = chunker.with_coalesce_gap(Duration::from_secs(secs));
        }
        if let Some(chars) = self.coalesce_chars {
            chunker = chunker.with_coalesce_chars(chars);
        }
        if let Some(secs) = self.session_gap_secs {
            chunker = chunker.with_session_gap(Duration::from_secs(secs));
        }
        if let Some(window) = self.window {
            chunker = chunker.with_window(window);
        }
        if let Some(overlap) = self.overlap {
            chunker = chunker.with_overlap(overlap);
        }
        if let Some(chars) = self.max_chars {
            chunker = chunker.with_max_chars(chars);
        }
        chunker
    }
}

fn print_stats(stats: &Stats, elapsed: Duration) {
    eprintln!("messages read     {:>10}", stats.messages);
    eprintln!("dropped           {:>10}", stats.dropped_total());
    for reason in DropReason::ALL {
        if let Some(n) = stats.dropped.get(&reason) {
            eprintln!("  {:<15} {n:>10}", reason.as_str());
        }
    }
    eprintln!("after coalescing  {:>10}", stats.turns);
    eprintln!("sessions          {:>10}", stats.sessions);
    eprintln!("chunks            {:>10}", stats.chunks);
    eprintln!(
        "compression       {:>10.1} messages per chunk",
        stats.compression_ratio()
    );
    eprintln!("chunked in        {:>10.2} s", elapsed.as_secs_f64());
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let output = Output::claim(&args.output, args.format, &[Format::Jsonl])?;
    let messages = read_messages(&args.input)
        .with_context(|| format!("reading messages from {}", args.input.display()))?;
    let started = Instant::now();
    let out = args.chunker().chunk(&messages)?;
    let elapsed = started.elapsed();
    output.commit(|file| Ok(write_chunks_jsonl(file, &out.chunks, &args.output)?))?;
    if args.stats {
        print_stats(&out.stats, elapsed);
    }
    Ok(())
}
