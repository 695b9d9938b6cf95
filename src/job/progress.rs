//! What a running job shows: an indicatif bar (input lines, ETA, records/s, tokens/s, machine
//! samples, cost) on a terminal, and a log line every 30 seconds either way, so that a job
//! whose stderr goes to a file or a cluster's log collector stays readable.
//!
//! The job thread only stores counters (atomics, no locks on the hot path); a background thread
//! samples the machine once a second, refreshes the bar's message and writes the log lines.
//! Log lines go through `tracing` (target `rembed::job`), printed above the bar.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::cost::{remaining_seconds, CostEstimate};
use super::input::count_lines;
use super::sampler::{Sample, Sampler};

const LOG_EVERY: Duration = Duration::from_secs(30);
const RATE_WINDOW: usize = 10;

/// Counters the job thread updates and the sampler thread reads.
#[derive(Default)]
struct Counters {
    lines: AtomicU64,
    embedded: AtomicU64,
    tokens: AtomicU64,
    /// Lines in the input, once counted; 0 until then.
    total_lines: AtomicU64,
}

/// Settings of the progress display.
pub(crate) struct ProgressSettings<'a> {
    pub input: &'a Path,
    /// Draw the bar (when stderr is a terminal).
    pub bar: bool,
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
    started: Instant,
    price_per_hour: Option<f64>,
    earlier_seconds: f64,
    stop: Option<mpsc::Sender<()>>,
    sampler: Option<JoinHandle<()>>,
}

impl Progress {
    pub(crate) fn start(settings: ProgressSettings<'_>) -> Self {
        let bar = if settings.bar && std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(style("{spinner} {elapsed_precise} {pos} lines\n  {msg}"));
        let counters = Arc::new(Counters::default());
        let input = settings.input.to_path_buf();
        let (counter, line_bar) = (counters.clone(), bar.clone());
        // Counting lines reads the whole input once, at disk speed; the bar has no length and
        // the ETA no end until it is done, but the job does not wait for it.
        std::thread::spawn(move || {
            if let Ok(lines) = count_lines(&input) {
                counter.total_lines.store(lines.max(1), Relaxed);
                line_bar.set_length(lines);
                line_bar.set_style(style(
                    "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} lines, ETA {eta}\n  {msg}",
                ));
            }
        });
        let mut progress = Self {
            bar,
            counters,
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

    /// Records the job's position: input lines consumed, records embedded and tokens seen in
    /// this run.
    pub(crate) fn update(&self, lines: u64, embedded: u64, tokens: u64) {
        self.counters.lines.store(lines, Relaxed);
        self.counters.embedded.store(embedded, Relaxed);
        self.counters.tokens.store(tokens, Relaxed);
        self.bar.set_position(lines);
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
    started: Instant,
    price_per_hour: Option<f64>,
    earlier_seconds: f64,
    /// Recent (time, embedded, tokens), for rates over the last ten seconds.
    window: Arc<Mutex<VecDeque<(Instant, u64, u64)>>>,
}

impl View {
    fn run(self, mut sampler: Sampler, stopped: mpsc::Receiver<()>) {
        let mut last_log = Instant::now();
        loop {
            match stopped.recv_timeout(Duration::from_secs(1)) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            let sample = sampler.sample();
            let line = self.line(&sample);
            self.bar.set_message(line.clone());
            if last_log.elapsed() >= LOG_EVERY {
                last_log = Instant::now();
                let lines = self.counters.lines.load(Relaxed);
                let total = self.counters.total_lines.load(Relaxed);
                let embedded = self.counters.embedded.load(Relaxed);
                let eta = self.remaining().map_or("?".into(), |s| format!("{s:.0}s"));
                self.bar.suspend(|| {
                    tracing::info!(target: "rembed::job",
                        "{lines}/{total} lines, {embedded} embedded, ETA {eta}, {line}")
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
        let total = self.counters.total_lines.load(Relaxed);
        remaining_seconds(
            self.counters.lines.load(Relaxed),
            (total > 0).then_some(total),
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
