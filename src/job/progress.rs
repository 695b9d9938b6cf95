//! What a running job shows: an indicatif bar (share of the input done, ETA, records/s,
//! tokens/s, machine samples, cost) on a terminal, and a plain log line every 30 seconds either
//! way, so that a job whose stderr goes to a file or a cluster's log collector stays readable.
//!
//! Progress is measured in bytes of input behind the last finished record, against the file's
//! size: that needs no line count, so the input is read once, and it moves as each batch
//! finishes (not when the reader, which runs ahead, reads a line).
//!
//! The job thread only stores counters (atomics, no locks on the hot path); a background thread
//! samples the machine once a second, refreshes the bar's message and writes the log lines.
//! Log lines go through `tracing` (target `rembed::job`), printed above the bar.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::cost::{remaining_seconds, CostEstimate};
use super::sampler::{Sample, Sampler};

const RATE_WINDOW: usize = 10;

/// Counters the job thread updates and the sampler thread reads.
#[derive(Default)]
struct Counters {
    /// Input bytes behind the last finished record.
    bytes: AtomicU64,
    embedded: AtomicU64,
    failed: AtomicU64,
    tokens: AtomicU64,
}

/// Settings of the progress display.
pub(crate) struct ProgressSettings {
    /// The input's size in bytes.
    pub total_bytes: u64,
    /// Draw the bar (when stderr is a terminal).
    pub bar: bool,
    /// How often to log a plain line.
    pub log_every: Duration,
    /// The GPU to sample, when the model runs on one.
    pub gpu: Option<u32>,
    pub price_per_hour: Option<f64>,
    /// Seconds of earlier runs on the same output, for the cost.
    pub earlier_seconds: f64,
}

/// The running display; [`Progress::finish`] stops its threads.
pub(crate) struct Progress {
    bar: ProgressBar,
    counters: Arc<Counters>,
    total_bytes: u64,
    log_every: Duration,
    started: Instant,
    price_per_hour: Option<f64>,
    earlier_seconds: f64,
    stop: Option<mpsc::Sender<()>>,
    sampler: Option<JoinHandle<()>>,
}

impl Progress {
    pub(crate) fn start(settings: ProgressSettings) -> Self {
        let bar = if settings.bar && std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(Some(settings.total_bytes), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(style(
            "{spinner} {elapsed_precise} [{bar:40}] {binary_bytes}/{binary_total_bytes}, ETA {eta}\n  {msg}",
        ));
        let counters = Arc::new(Counters::default());
        let mut progress = Self {
            bar,
            counters,
            total_bytes: settings.total_bytes,
            log_every: settings.log_every,
            started: Instant::now(),
            price_per_hour: settings.price_per_hour,
            earlier_seconds: settings.earlier_seconds,
            stop: None,
            sampler: None,
        };
        let (stop, stopped) = mpsc::channel();
        let view = progress.view();
        let gpu = settings.gpu;
        progress.stop = Some(stop);
        progress.sampler = Some(std::thread::spawn(move || {
            view.run(Sampler::new(gpu), stopped)
        }));
        progress
    }

    /// Records the job's position: input bytes behind the last finished record, and records
    /// embedded, failed and tokens seen in this run.
    pub(crate) fn update(&self, bytes: u64, embedded: u64, failed: u64, tokens: u64) {
        self.counters.bytes.store(bytes, Relaxed);
        self.counters.embedded.store(embedded, Relaxed);
        self.counters.failed.store(failed, Relaxed);
        self.counters.tokens.store(tokens, Relaxed);
        self.bar.set_position(bytes);
    }

    /// Seconds this run has taken.
    pub(crate) fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Cost so far and projected, with a price.
    pub(crate) fn cost(&self) -> Option<CostEstimate> {
        self.view().cost()
    }

    /// Stops the sampler and clears the bar.
    pub(crate) fn finish(mut self) {
        self.stop.take();
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
        self.bar.finish_and_clear();
    }

    fn view(&self) -> View {
        View {
            bar: self.bar.clone(),
            counters: self.counters.clone(),
            total_bytes: self.total_bytes,
            log_every: self.log_every,
            started: self.started,
            price_per_hour: self.price_per_hour,
            earlier_seconds: self.earlier_seconds,
            window: Arc::new(Mutex::new(VecDeque::new())),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// What the sampler thread sees of the job.
struct View {
    bar: ProgressBar,
    counters: Arc<Counters>,
    total_bytes: u64,
    log_every: Duration,
    started: Instant,
    price_per_hour: Option<f64>,
    earlier_seconds: f64,
    /// Recent (time, embedded, tokens), for rates over the last ten seconds.
    window: Arc<Mutex<VecDeque<(Instant, u64, u64)>>>,
}

impl View {
    fn run(self, mut sampler: Sampler, stopped: mpsc::Receiver<()>) {
        let mut last_log = Instant::now();
        let tick = self.log_every.min(Duration::from_secs(1));
        loop {
            match stopped.recv_timeout(tick) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            let sample = sampler.sample();
            let line = self.line(&sample);
            self.bar.set_message(line.clone());
            if last_log.elapsed() >= self.log_every {
                last_log = Instant::now();
                let bytes = self.counters.bytes.load(Relaxed);
                let embedded = self.counters.embedded.load(Relaxed);
                let failed = self.counters.failed.load(Relaxed);
                let percent = 100.0 * bytes as f64 / self.total_bytes.max(1) as f64;
                let eta = self.remaining().map_or("?".into(), |s| format!("{s:.0}s"));
                self.bar.suspend(|| {
                    tracing::info!(target: "rembed::job",
                        "{percent:.1}% of the input ({} of {} MiB), {embedded} embedded and \
                         {failed} failed in this run, ETA {eta}, {line}",
                        bytes >> 20, self.total_bytes >> 20)
                });
            }
        }
    }

    /// `1234 rec/s · 56789 tok/s · CPU 180% RAM 1.2GiB · $0.12 (projected $3.40)`.
    fn line(&self, sample: &Sample) -> String {
        let now = Instant::now();
        let embedded = self.counters.embedded.load(Relaxed);
        let tokens = self.counters.tokens.load(Relaxed);
        let (records_per_s, tokens_per_s) = {
            let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
            window.push_back((now, embedded, tokens));
            while window.len() > RATE_WINDOW {
                window.pop_front();
            }
            match (window.front(), window.back()) {
                (Some(first), Some(last)) if last.0 > first.0 => {
                    let secs = (last.0 - first.0).as_secs_f64();
                    (
                        (last.1 - first.1) as f64 / secs,
                        (last.2 - first.2) as f64 / secs,
                    )
                }
                _ => (0.0, 0.0),
            }
        };
        let mut line = format!("{records_per_s:.0} rec/s · {tokens_per_s:.0} tok/s · {sample}");
        if let Some(cost) = self.cost() {
            line.push_str(&format!(" · {cost}"));
        }
        line
    }

    fn remaining(&self) -> Option<f64> {
        remaining_seconds(
            self.counters.bytes.load(Relaxed),
            Some(self.total_bytes),
            self.started.elapsed().as_secs_f64(),
        )
    }

    fn cost(&self) -> Option<CostEstimate> {
        let seconds = self.earlier_seconds + self.started.elapsed().as_secs_f64();
        Some(CostEstimate::new(
            self.price_per_hour?,
            seconds,
            self.remaining(),
        ))
    }
}
