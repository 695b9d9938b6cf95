//! The job itself: stream records, skip what is done or not this shard's, embed the rest in
//! batches, write part files, checkpoint, reconcile.

use std::time::SystemTime;

use super::config::Config;
use super::counts::{Counts, Report};
use super::error::Error;
use super::input::{Fingerprint, JsonlReader};
use super::manifest::MANIFEST_FORMAT;
use super::manifest::{rfc3339, InputProvenance, Manifest, ModelProvenance, RunInfo};
use super::model::sampled_gpu;
use super::progress::{Progress, ProgressSettings};
use super::records::Job;
use super::resume;
use super::sample::Sample;
use super::schema;
use super::skipped::SkipList;
use super::sorter::Sorter;
use super::stop::Signals;
use crate::Embedder;

/// Runs a corpus job to the end of its input: embeds every record of the shard that is not in
/// the output yet, into Parquet part files under `config.output`, and returns the
/// reconciliation. Run it again after a crash to resume.
///
/// Records that fail are counted and listed, never fatal; errors are for conditions under
/// which going on would lose or mix data, or do nothing useful (see [`Error`]).
pub fn run(embedder: &Embedder, config: &Config) -> Result<Report, Error> {
    config.validate()?;
    let output = config.output.as_path();
    std::fs::create_dir_all(output).map_err(Error::io("create directory", output))?;
    let _lock = resume::lock(output, config.shard)?;
    let model = ModelProvenance::identify(embedder, config.model_source.as_deref())?;

    // The input is read once: its first records now (columns, text field check), the rest
    // streamed by the sorter after them. The fingerprint reads only its first and last MiB.
    let fingerprint = Fingerprint::of(&config.input)?;
    let mut reader = JsonlReader::open(&config.input, &config.id_field, &config.text_field)?;
    let sample = Sample::read(&mut reader)?;

    // Checking the directory and claiming this run's shard layout (by writing its first
    // manifest) happen under one directory-wide lock, so concurrent starts with other layouts
    // see the claim and are refused. A shard with a manifest has claimed it already.
    let layout_lock = resume::lock_layout(output)?;
    let mut checked = resume::check(output, config.shard, &model)?;
    let now = rfc3339(SystemTime::now());
    let claimed = checked.previous.is_some();
    let (columns, mut manifest, input_changed) = match checked.previous.take() {
        Some(mut previous) => {
            resume::check_fields(output, &previous.input, config)?;
            sample.check_text_field(&config.input, &config.text_field)?;
            let changed = fingerprint.changes_since(&previous.input.fingerprint);
            if let Some(change) = &changed {
                tracing::warn!(target: "rembed::job", input = %config.input.display(), %change,
                    "the input changed since the previous run; finished ids are kept, new ones embedded");
            }
            previous.input.fingerprint = fingerprint.clone();
            previous.model = model.clone();
            (previous.input.columns.clone(), previous, changed)
        }
        None => {
            sample.check_text_field(&config.input, &config.text_field)?;
            let columns = schema::infer(sample.records());
            let manifest = Manifest {
                format: MANIFEST_FORMAT,
                rembed_version: env!("CARGO_PKG_VERSION").into(),
                model: model.clone(),
                input: InputProvenance {
                    // Absolute, so that `verify` finds it from any directory.
                    path: std::fs::canonicalize(&config.input)
                        .unwrap_or_else(|_| config.input.clone()),
                    id_field: config.id_field.clone(),
                    text_field: config.text_field.clone(),
                    fingerprint: fingerprint.clone(),
                    columns: columns.clone(),
                },
                shard_index: config.shard.index(),
                shard_count: config.shard.count(),
                checkpoint_every: config.checkpoint_every,
                started_at: now.clone(),
                updated_at: now.clone(),
                ended_at: None,
                complete: false,
                counts: Counts::default(),
                failures: Vec::new(),
                failures_omitted: 0,
                not_embedded: None,
                input_changed: None,
                parts: Vec::new(),
                cost: None,
                runs: Vec::new(),
            };
            (columns, manifest, None)
        }
    };
    manifest.updated_at.clone_from(&now);
    if !claimed {
        manifest.write(output)?;
    }
    drop(layout_lock);
    // Outside the lock: reading the ids of a large output takes seconds, and every other
    // shard's start would wait for it.
    let resumed = checked.read_done()?;

    let earlier_seconds = manifest.runs.iter().map(|r| r.seconds).sum();
    manifest.input_changed = input_changed.clone();
    manifest.checkpoint_every = config.checkpoint_every;
    manifest.parts = resumed.parts.clone();
    manifest.ended_at = None;
    manifest.complete = false;
    manifest.runs.push(RunInfo {
        started_at: now.clone(),
        ended_at: None,
        device: model.device.clone(),
        dtype: model.dtype.clone(),
        embedded: 0,
        seconds: 0.0,
        stopped_by: None,
    });
    // The provenance is on disk before any part file, so a crash at any later moment leaves an
    // output that the next run can check against.
    manifest.updated_at = now;
    manifest.write(output)?;

    tracing::info!(target: "rembed::job",
        "starting {} of {} into {}: model {}, dim {}, device {}, dtype {}; {} rows from earlier runs",
        config.shard, config.input.display(), output.display(), model.describe(), model.dim,
        model.device, model.dtype, resumed.done.len());

    let signals = Signals::install(config.stop_on_signals)?;
    let progress = Progress::start(ProgressSettings {
        total_bytes: fingerprint.bytes,
        bar: config.progress,
        log_every: config.log_every,
        gpu: sampled_gpu(embedder),
        price_per_hour: config.price_per_hour,
        earlier_seconds,
    });
    let skipped = SkipList::create(output, config.shard)?;
    let mut job = Job::new(
        embedder,
        config,
        &columns,
        resumed.next_seq,
        manifest,
        progress,
        skipped,
        &signals,
    );
    let sorter = Sorter::new(reader, sample.lines, config.shard, resumed.done);
    let stopped_by = std::thread::scope(|scope| {
        // Bounded: at most a few chunks of records wait while the model works.
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        scope.spawn(move || sorter.run(tx));
        job.consume(rx)
    })?;
    job.finish(resumed.duplicate_rows, stopped_by)
}
