//! Picking up an existing output directory: what is already done is known by id, read back
//! from the finished part files, never by a count of lines to skip (lines shift when the input
//! changes; ids do not).
//!
//! Before anything is written, the directory is checked: a run with another model, dimension
//! or prompt, or another shard layout, is refused, since adding to it would mix vector spaces or
//! overlap shards. Temporary files of this shard that a crash left behind are deleted.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::config::Config;
use super::error::Error;
use super::hash::id_hash;
use super::manifest::{InputProvenance, Manifest, ModelProvenance};
use super::output::{parse_part_name, read_ids, CheckVectors, PartInfo, PartRows};
use super::shard::Shard;

/// An output directory checked against this run: its manifest for this shard, if any, and
/// this shard's part files, not read yet.
pub(crate) struct Checked {
    /// This shard's manifest from the previous run.
    pub previous: Option<Manifest>,
    /// This shard's part files, in order, with their sequence numbers.
    own_parts: Vec<(u64, PathBuf)>,
}

/// What an output directory already holds for this shard.
pub(crate) struct Resumed {
    /// Hashes of the ids in this shard's part files.
    pub done: HashSet<u128>,
    /// This shard's finished part files, in order.
    pub parts: Vec<PartInfo>,
    /// The sequence number of the next part file.
    pub next_seq: u64,
    /// Rows whose id is already in an earlier part (never written by this job).
    pub duplicate_rows: u64,
}

/// Takes the lock that keeps two processes from writing the same shard. Held while the
/// returned file is open; the lock file itself stays (deleting it would break the lock).
pub(crate) fn lock(output: &Path, shard: Shard) -> Result<File, Error> {
    let path = output.join(format!(".lock{}", shard.tag()));
    let file = File::create(&path).map_err(Error::io("create", &path))?;
    // std's advisory lock (flock on Unix) is released by the kernel when the process dies, even
    // by SIGKILL, so a crashed run never leaves a stale lock.
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::AlreadyRunning { lock: path }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", path)(e)),
    }
}

/// Takes the directory-wide lock under which a run checks the shard layout and claims its own
/// (by writing its manifest), so that an unsharded run and `--shard 0/2` started at the same
/// moment cannot both find the directory empty and both go on. Held only for that short while;
/// other runs wait for it (blocking), then see the claim.
pub(crate) fn lock_layout(output: &Path) -> Result<File, Error> {
    let path = output.join(".lock-layout");
    let file = File::create(&path).map_err(Error::io("create", &path))?;
    file.lock().map_err(Error::io("lock", &path))?;
    Ok(file)
}

/// Files of a shared output directory, by shard.
pub(crate) struct Listing {
    /// Manifests found, with their shard.
    pub manifests: Vec<(Shard, PathBuf)>,
    /// Part files found, with their shard and sequence number.
    pub parts: Vec<(Shard, u64, PathBuf)>,
    /// Temporary files left by interrupted writes.
    pub temporary: Vec<PathBuf>,
}

/// Lists the job's files in `output`.
pub(crate) fn list(output: &Path) -> Result<Listing, Error> {
    let mut listing = Listing {
        manifests: Vec::new(),
        parts: Vec::new(),
        temporary: Vec::new(),
    };
    for entry in std::fs::read_dir(output).map_err(Error::io("list", output))? {
        let path = entry.map_err(Error::io("list", output))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some((shard, seq)) = parse_part_name(name) {
            listing.parts.push((shard, seq, path));
        } else if let Some(shard) = name
            .strip_prefix("_manifest")
            .and_then(|rest| rest.strip_suffix(".json"))
            .and_then(Shard::from_tag)
        {
            listing.manifests.push((shard, path));
        } else if name.starts_with('.') && name.ends_with(".tmp") {
            listing.temporary.push(path);
        }
    }
    listing
        .parts
        .sort_by_key(|(shard, seq, _)| (shard.index(), *seq));
    listing.manifests.sort_by_key(|(shard, _)| shard.index());
    Ok(listing)
}

/// Checks `output` against this run (shard layout, model) and deletes this shard's leftover
/// temporary files. Cheap: reads the manifests, not the part files, since it runs under the
/// directory-wide layout lock.
pub(crate) fn check(
    output: &Path,
    shard: Shard,
    model: &ModelProvenance,
) -> Result<Checked, Error> {
    let listing = list(output)?;
    let layouts = listing
        .manifests
        .iter()
        .map(|(s, _)| *s)
        .chain(listing.parts.iter().map(|(s, _, _)| *s));
    for other in layouts {
        if other.count() != shard.count() {
            let advice = match other.count() {
                1 => "to add to it, run without --shard".to_string(),
                n => format!(
                    "to add to it, run with --shard I/{n} (0 <= I < {n}; in a Slurm array \
                     --shard \"$SLURM_ARRAY_TASK_ID/{n}\" with --array=0-{})",
                    n - 1
                ),
            };
            return Err(Error::ShardLayout {
                output: output.to_path_buf(),
                existing: other.to_string(),
                requested: shard.to_string(),
                advice: format!("{advice}; else use a new output directory"),
            });
        }
    }
    let mut previous = None;
    for (other, path) in &listing.manifests {
        let manifest = Manifest::read(path)?;
        if let Some((field, existing, requested)) = manifest.model.mismatch(model) {
            return Err(Error::ModelMismatch {
                output: output.to_path_buf(),
                field,
                existing,
                requested,
            });
        }
        if *other == shard {
            previous = Some(manifest);
        }
    }

    // Only this shard's leftovers: other shards may be writing theirs right now.
    let own_tmp = [
        format!(".part{}-", shard.tag()),
        format!("._manifest{}.json", shard.tag()),
        format!(".{}", super::skipped::file_name(shard)),
    ];
    for path in &listing.temporary {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if own_tmp
            .iter()
            .any(|prefix| name.starts_with(prefix.as_str()))
        {
            tracing::info!(target: "rembed::job", file = %path.display(), "deleting an interrupted write");
            std::fs::remove_file(path).map_err(Error::io("delete", path))?;
        }
    }

    let own_parts: Vec<(u64, PathBuf)> = listing
        .parts
        .into_iter()
        .filter(|(s, _, _)| *s == shard)
        .map(|(_, seq, path)| (seq, path))
        .collect();
    if previous.is_none() && !own_parts.is_empty() {
        return Err(Error::MissingManifest {
            output: output.to_path_buf(),
            manifest: Manifest::file_name(shard),
        });
    }
    Ok(Checked {
        previous,
        own_parts,
    })
}

impl Checked {
    /// Reads back what this shard already did, by id, from its part files. A part that an
    /// older version wrote with non-finite vectors is moved aside (renamed
    /// `.part-….parquet.non-finite`, which readers and the job skip), so its records are
    /// embedded again.
    pub(crate) fn read_done(self) -> Result<Resumed, Error> {
        let mut resumed = Resumed {
            done: HashSet::new(),
            parts: Vec::with_capacity(self.own_parts.len()),
            next_seq: self.own_parts.last().map_or(0, |(seq, _)| seq + 1),
            duplicate_rows: 0,
        };
        for (_, path) in &self.own_parts {
            let PartRows {
                ids,
                info,
                non_finite,
            } = read_ids(path, CheckVectors::Unmarked)?;
            if !non_finite.is_empty() {
                let aside = path.with_file_name(format!(".{}.non-finite", info.file));
                std::fs::rename(path, &aside).map_err(Error::io("rename", path))?;
                tracing::warn!(target: "rembed::job",
                    "{} holds {} non-finite vectors (written by an older version of the job): \
                     moved aside as {}; its {} records will be embedded again",
                    path.display(), non_finite.len(), aside.display(), ids.len());
                continue;
            }
            for id in &ids {
                if !resumed.done.insert(id_hash(id)) {
                    resumed.duplicate_rows += 1;
                }
            }
            resumed.parts.push(info);
        }
        Ok(resumed)
    }
}

/// Refuses a run whose id or text field differs from the one that wrote the output: the same
/// ids would then stand for other texts.
pub(crate) fn check_fields(
    output: &Path,
    previous: &InputProvenance,
    config: &Config,
) -> Result<(), Error> {
    for (field, existing, requested) in [
        ("id field", &previous.id_field, &config.id_field),
        ("text field", &previous.text_field, &config.text_field),
    ] {
        if existing != requested {
            return Err(Error::ModelMismatch {
                output: output.to_path_buf(),
                field,
                existing: existing.clone(),
                requested: requested.clone(),
            });
        }
    }
    Ok(())
}
