//! The job itself: stream records, skip what is done or not this shard's, embed the rest in
//! batches, write part files, checkpoint, reconcile.

use std::time::SystemTime;

use super::config::JobConfig;
use super::counts::{Counts, Report};
use super::error::JobError;
use super::input::{Fingerprint, JsonlReader};
use super::manifest::MANIFEST_FORMAT;
use super::manifest::{rfc3339, InputProvenance, Manifest, ModelProvenance, RunInfo};
use super::progress::{Progress, ProgressSettings};
use super::records::Job;
use super::resume;
use super::schema;
use super::sorter::Sorter;
use crate::Embedder;

/// Runs a corpus job to the end of its input: embeds every record of the shard that is not in
/// the output yet, into Parquet part files under `config.output`, and returns the
/// reconciliation. Run it again after a crash to resume.
///
/// Records that fail are counted and listed, never fatal; errors are for conditions under
/// which going on would lose or mix data (see [`JobError`]).
pub fn run(embedder: &Embedder, config: &JobConfig) -> Result<Report, JobError> {
    config.validate()?;
    let output = config.output.as_path();
    std::fs::create_dir_all(output).map_err(JobError::io(output))?;
    let _lock = resume::lock(output, config.shard)?;
    let model = ModelProvenance::of(embedder);
    let resumed = resume::prepare(output, config.shard, &model)?;
    let fingerprint = Fingerprint::of(&config.input)?;
    let now = rfc3339(SystemTime::now());

    let (columns, mut manifest, input_changed) = match resumed.previous {
        Some(mut previous) => {
            resume::check_fields(output, &previous.input, config)?;
            let changed = fingerprint.changes_since(&previous.input.fingerprint);
            if let Some(change) = &changed {
                tracing::warn!(target: "rembed::job", input = %config.input.display(), %change,
                    "the input changed since the previous run; finished ids are kept, new ones embedded");
            }
            previous.input.fingerprint = fingerprint;
            previous.model = model.clone();
            (previous.input.columns.clone(), previous, changed)
        }
        None => {
            let columns = schema::infer(&config.input, &config.id_field, &config.text_field)?;
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
                    fingerprint,
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
                input_changed: None,
                parts: Vec::new(),
                cost: None,
                runs: Vec::new(),
            };
            (columns, manifest, None)
        }
    };
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
    });
    // The provenance is on disk before any part file, so a crash at any later moment leaves an
    // output that the next run can check against.
    manifest.updated_at = now;
    manifest.write(output)?;

    let gpu = match embedder.devices().first() {
        Some(&crate::Device::Cuda(ordinal)) => u32::try_from(ordinal).ok(),
        _ => None,
    };
    let progress = Progress::start(ProgressSettings {
        input: &config.input,
        bar: config.progress,
        gpu,
        price_per_hour: config.price_per_hour,
        earlier_seconds,
    });
    let mut job = Job::new(
        embedder,
        config,
        &columns,
        resumed.next_seq,
        manifest,
        progress,
    );
    let reader = JsonlReader::open(&config.input, &config.id_field, &config.text_field)?;
    let sorter = Sorter::new(reader, config.shard, resumed.done);
    std::thread::scope(|scope| {
        // Bounded: at most a few chunks of records wait while the model works.
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        scope.spawn(move || sorter.run(tx));
        job.consume(rx)
    })?;
    job.finish(resumed.duplicate_rows)
}
