//! The manifest: one JSON file per shard beside the part files, with the provenance of the
//! vectors (which model, dimension, precision and prompt made them, from which input), the
//! reconciliation counts and the list of finished parts. Replaced atomically at every
//! checkpoint, so it is always either the previous or the next complete version.
//!
//! Its name starts with `_` because pyarrow and Spark skip such files when reading a directory
//! of Parquet files; a plain `manifest.json` would make `pq.read_table(dir)` fail.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::cost::CostEstimate;
use super::counts::{Counts, FailedRecord};
use super::error::Error;
use super::identity::ModelIdentity;
use super::input::Fingerprint;
use super::output::{sync_dir, PartInfo};
use super::schema::MetaColumn;
use super::shard::Shard;
use super::stop::StopSignal;
use crate::{Embedder, Prompt};

/// Version of the manifest layout; bumped on incompatible changes.
pub const MANIFEST_FORMAT: u32 = 1;

/// Which model made the vectors. For a run to add to an existing output, the model must be the
/// same (by weight and config digests where both runs know them, else by name, repo and
/// revision), and so must the dimension, prompt, pooling, normalization and max length; `dtype`
/// and `device` may differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelProvenance {
    /// Registry name, repo id or directory the model was loaded from.
    pub name: String,
    /// Hugging Face repo id, where known.
    pub repo: String,
    /// Repo revision, where known.
    pub revision: String,
    /// Network architecture.
    pub architecture: String,
    /// How token vectors were pooled.
    pub pooling: String,
    /// Whether vectors are L2-normalized.
    pub normalized: bool,
    /// Vector dimension.
    pub dim: usize,
    /// Max tokens per text; longer texts were truncated.
    pub max_length: usize,
    /// Prompt prepended to every text (the model's document prompt).
    pub prompt: String,
    /// Number format of the weights in the latest run (`f32`, `bf16`, ...).
    pub dtype: String,
    /// Device of the latest run.
    pub device: String,
    /// Digests of the weight and config files, and the hub commit.
    #[serde(flatten, default)]
    pub identity: ModelIdentity,
}

impl ModelProvenance {
    /// The provenance of vectors made by `embedder` with [`Prompt::Document`], its files
    /// found from `source` (the string it was loaded from; by default its registry name) and
    /// hashed. The prompt is the one the embedder prepends to documents (empty with prompts
    /// off).
    pub(crate) fn identify(embedder: &Embedder, source: Option<&str>) -> Result<Self, Error> {
        let spec = embedder.spec();
        let identity = ModelIdentity::find(source.unwrap_or(&spec.name), spec)?;
        Ok(Self::of(embedder, identity))
    }

    fn of(embedder: &Embedder, identity: ModelIdentity) -> Self {
        let spec = embedder.spec();
        Self {
            name: spec.name.clone(),
            repo: spec.repo.clone(),
            revision: spec.revision.clone(),
            architecture: spec.architecture.to_string(),
            pooling: format!("{:?}", spec.pooling).to_lowercase(),
            normalized: spec.normalize,
            dim: embedder.dim(),
            max_length: spec.max_length,
            prompt: embedder
                .resolve_prompt(&Prompt::Document)
                .unwrap_or_default(),
            dtype: embedder.precision().as_str().to_string(),
            // Every replica's device, comma-separated.
            device: embedder
                .devices()
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(","),
            identity,
        }
    }

    /// The model in a few words, for logs: name, weights digest (first 12 hex digits), commit.
    pub(crate) fn describe(&self) -> String {
        let mut text = self.name.clone();
        match &self.identity.weights_sha256 {
            Some(digest) => text.push_str(&format!(" (weights sha256 {}", &digest[..12])),
            None => text.push_str(" (weights digest unknown"),
        }
        if let Some(commit) = &self.identity.commit {
            text.push_str(&format!(", commit {}", &commit[..12.min(commit.len())]));
        }
        text.push(')');
        text
    }

    /// The first property that makes vectors of `self` and `other` incomparable:
    /// `(field, self's value, other's value)`.
    pub(crate) fn mismatch(&self, other: &Self) -> Option<(&'static str, String, String)> {
        let (a, b) = (&self.identity, &other.identity);
        let model = ("model", self.name.clone(), other.name.clone());
        let identity: Vec<(&'static str, String, String)> =
            match (&a.weights_sha256, &b.weights_sha256) {
                // What the files are decides; a name is reported when it differs too.
                (Some(wa), Some(wb)) => {
                    let names_differ = self.name != other.name;
                    let config = (a.config_sha256.clone(), b.config_sha256.clone());
                    if wa != wb {
                        vec![if names_differ {
                            model
                        } else {
                            ("weights", format!("sha256 {wa}"), format!("sha256 {wb}"))
                        }]
                    } else if config.0 != config.1 {
                        let show =
                            |d: Option<String>| d.map_or("?".into(), |d| format!("sha256 {d}"));
                        vec![if names_differ {
                            model
                        } else {
                            ("config", show(config.0), show(config.1))
                        }]
                    } else {
                        Vec::new()
                    }
                }
                _ => vec![
                    model,
                    ("repo", self.repo.clone(), other.repo.clone()),
                    ("revision", self.revision.clone(), other.revision.clone()),
                ],
            };
        let fields: [(&'static str, String, String); 5] = [
            ("dim", self.dim.to_string(), other.dim.to_string()),
            (
                "prompt",
                format!("{:?}", self.prompt),
                format!("{:?}", other.prompt),
            ),
            ("pooling", self.pooling.clone(), other.pooling.clone()),
            (
                "normalized",
                self.normalized.to_string(),
                other.normalized.to_string(),
            ),
            (
                "max_length",
                self.max_length.to_string(),
                other.max_length.to_string(),
            ),
        ];
        identity.into_iter().chain(fields).find(|(_, a, b)| a != b)
    }
}

/// Which input the vectors came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InputProvenance {
    /// The JSONL file, as given.
    pub path: PathBuf,
    /// Field holding each record's id.
    pub id_field: String,
    /// Field holding each record's text.
    pub text_field: String,
    /// The file's fingerprint at the latest run's start.
    pub fingerprint: Fingerprint,
    /// Metadata columns of the part files, fixed by the first run.
    pub columns: Vec<MetaColumn>,
}

/// One invocation of the job on this output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunInfo {
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it finished, if it did (a killed run has none).
    pub ended_at: Option<String>,
    /// Device and precision it ran with.
    pub device: String,
    /// Number format of the weights.
    pub dtype: String,
    /// Records it embedded (as of its latest checkpoint).
    pub embedded: u64,
    /// Seconds it ran (as of its latest checkpoint).
    pub seconds: f64,
    /// The signal that stopped it after its batch in flight, if one did.
    #[serde(default)]
    pub stopped_by: Option<StopSignal>,
}

/// The manifest of one shard's output (the whole output when unsharded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// Version of rembed that wrote it.
    pub rembed_version: String,
    /// The model.
    pub model: ModelProvenance,
    /// The input.
    pub input: InputProvenance,
    /// This shard's index.
    pub shard_index: u32,
    /// How many shards the input is split into (1 when unsharded).
    pub shard_count: u32,
    /// Records per part file (the checkpoint interval).
    pub checkpoint_every: usize,
    /// When the first run started (RFC 3339, UTC).
    pub started_at: String,
    /// When this file was written.
    pub updated_at: String,
    /// When the last run finished the input; `None` while unfinished.
    pub ended_at: Option<String>,
    /// Whether every record of this shard is embedded or accounted for.
    pub complete: bool,
    /// Reconciliation counts (as of the latest checkpoint while unfinished).
    pub counts: Counts,
    /// Records that were malformed or failed to embed, with line, id and reason.
    pub failures: Vec<FailedRecord>,
    /// Failures beyond those listed, when there were too many to list.
    pub failures_omitted: u64,
    /// The file listing every record of the shard without a vector, and why (written when a
    /// run ends or is stopped; see [`super::Skipped`]).
    #[serde(default)]
    pub not_embedded: Option<String>,
    /// How the input differs from the previous run's, when it does.
    pub input_changed: Option<String>,
    /// Finished part files, in order.
    pub parts: Vec<PartInfo>,
    /// Cost so far and projected, with `--price-per-hour`.
    pub cost: Option<CostEstimate>,
    /// Every run on this output, oldest first.
    pub runs: Vec<RunInfo>,
}

impl Manifest {
    /// The manifest's file name for a shard: `_manifest.json` or `_manifest-s0003of0008.json`.
    pub fn file_name(shard: Shard) -> String {
        format!("_manifest{}.json", shard.tag())
    }

    /// The shard this manifest belongs to.
    pub fn shard(&self) -> Option<Shard> {
        Shard::new(self.shard_index, self.shard_count).ok()
    }

    /// Reads a manifest.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
        // Written by `write` below; a manifest edited by hand may have gained a byte order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let manifest: Self = serde_json::from_str(text).map_err(|e| Error::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(Error::Malformed {
                path: path.to_path_buf(),
                reason: format!(
                    "manifest format {} (this rembed writes {MANIFEST_FORMAT})",
                    manifest.format
                ),
            });
        }
        Ok(manifest)
    }

    /// Writes the manifest into `dir` atomically: temporary file, fsync, rename, directory fsync.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), Error> {
        let name = Self::file_name(self.shard().unwrap_or(Shard::ALL));
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Malformed {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut file = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        file.write_all(&json)
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(Error::io("write", &tmp))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(Error::io("rename into", &path))?;
        sync_dir(dir)
    }
}

/// A time as RFC 3339 in UTC with millisecond precision (`2024-05-01T12:34:56.789Z`).
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_date(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Year, month, day of a count of days since 1970-01-01, in the proleptic Gregorian calendar.
/// Works in 400-year eras (146,097 days each) counted from 0000-03-01, so that the leap day is
/// the last day of its year and months have a closed form.
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A full disk while the manifest is written (its temporary file is a link to /dev/full)
    /// says "cannot write" and which file.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_write_error_says_write() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/full", dir.path().join("._manifest.json.tmp")).unwrap();
        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "format": MANIFEST_FORMAT, "rembed_version": "0", "shard_index": 0, "shard_count": 1,
            "model": {"name": "m", "repo": "", "revision": "", "architecture": "bert",
                "pooling": "mean", "normalized": false, "dim": 2, "max_length": 8, "prompt": "",
                "dtype": "f32", "device": "cpu"},
            "input": {"path": "in.jsonl", "id_field": "id", "text_field": "text",
                "fingerprint": {"bytes": 0, "modified_unix_ns": null, "head": "", "tail": ""},
                "columns": []},
            "checkpoint_every": 1, "started_at": "", "updated_at": "", "ended_at": null,
            "complete": false, "counts": Counts::default(), "failures": [],
            "failures_omitted": 0, "input_changed": null, "parts": [], "cost": null, "runs": []
        }))
        .unwrap();
        let message = manifest.write(dir.path()).unwrap_err().to_string();
        assert!(message.starts_with("cannot write "), "{message}");
        assert!(message.contains("._manifest.json.tmp"), "{message}");
        assert!(message.contains("free space"), "{message}");
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day of a year divisible by 400) and a time of day.
        let t = UNIX_EPOCH + Duration::from_millis(951_827_696_789);
        assert_eq!(rfc3339(t), "2000-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        assert_eq!(rfc3339(t), "2024-12-31T23:59:59.000Z");
    }
}
