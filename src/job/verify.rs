//! The verify step after a sharded (or any) run: is the union of all shards' part files
//! complete against the input and free of duplicates, and were all shards made alike?
//!
//! It re-reads the input with the job's own rules (first occurrence of an id wins; empty texts
//! are not embedded) and every part file's ids, so it checks the files, not the manifests'
//! counts. Memory: about 50 bytes per id.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use super::error::Error;
use super::hash::id_hash;
use super::input::{JsonlReader, Line};
use super::manifest::Manifest;
use super::output::{read_ids, CheckVectors};
use super::resume::list;
use super::shard::Shard;

const EXAMPLES: usize = 10;

/// What [`verify`] found.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Shard count of the output (1 when unsharded).
    pub shard_count: u32,
    /// Shards with no manifest.
    pub missing_shards: Vec<u32>,
    /// Shards whose manifest says they did not finish, or that their counts do not add up.
    pub incomplete_shards: Vec<u32>,
    /// Disagreements between shards (model, dimension, prompt, columns, layout).
    pub mismatches: Vec<String>,
    /// Rows in all part files.
    pub rows: u64,
    /// Rows whose id is already in another row.
    pub duplicate_ids: u64,
    /// Rows in a shard's files whose id hashes to another shard.
    pub wrong_shard: u64,
    /// Unique input ids that should have a vector (non-empty text, or already embedded).
    pub expected: u64,
    /// Expected ids that a manifest lists as failed.
    pub failed: u64,
    /// Expected ids with no row and no listed failure.
    pub missing: u64,
    /// Rows whose id is not an expected input id (the input changed, or another input).
    pub unexpected: u64,
    /// Rows whose vector holds a NaN or an infinity (never written by this version of the
    /// job; an older one did).
    pub non_finite: u64,
    /// Unique ids in the input, whatever their text: when there are some but none is expected,
    /// no record had a text (a wrong text field) and the output is empty by mistake.
    pub input_ids: u64,
    /// A few ids of each problem, for the message.
    pub examples: Vec<String>,
}

impl VerifyReport {
    /// Whether the union of the shards is complete, duplicate-free and made alike.
    pub fn ok(&self) -> bool {
        self.missing_shards.is_empty()
            && self.incomplete_shards.is_empty()
            && self.mismatches.is_empty()
            && self.duplicate_ids == 0
            && self.wrong_shard == 0
            && self.failed == 0
            && self.missing == 0
            && self.unexpected == 0
            && self.non_finite == 0
            && !(self.expected == 0 && self.input_ids > 0)
    }

    fn example(&mut self, what: &str, id: &str) {
        if self.examples.len() < EXAMPLES {
            self.examples.push(format!("{what}: {id}"));
        }
    }
}

/// Checks the output directory `output` against its input: `input` or, when `None`, the path
/// recorded in the manifests.
pub fn verify(output: &Path, input: Option<&Path>) -> Result<VerifyReport, Error> {
    let listing = list(output)?;
    let manifests = listing
        .manifests
        .iter()
        .map(|(shard, path)| Ok((*shard, Manifest::read(path)?)))
        .collect::<Result<Vec<_>, Error>>()?;
    let Some((_, first)) = manifests.first() else {
        if listing.parts.is_empty() {
            return Err(Error::NoOutput {
                output: output.to_path_buf(),
            });
        }
        return Err(Error::MissingManifest {
            output: output.to_path_buf(),
            manifest: "_manifest*.json".into(),
        });
    };
    let mut report = VerifyReport {
        shard_count: first.shard_count,
        ..VerifyReport::default()
    };
    let count = first.shard_count;
    for index in 0..count {
        if !manifests
            .iter()
            .any(|(s, _)| *s == Shard::new(index, count).unwrap_or(Shard::ALL))
        {
            report.missing_shards.push(index);
        }
    }
    for (shard, manifest) in &manifests {
        if shard.count() != count {
            report
                .mismatches
                .push(format!("{shard} beside shards of {count}"));
            continue;
        }
        if !manifest.complete {
            report.incomplete_shards.push(shard.index());
        }
        if let Some((field, a, b)) = first.model.mismatch(&manifest.model) {
            report
                .mismatches
                .push(format!("{shard} has {field} {b}, shard 0 has {a}"));
        }
        if manifest.input.columns != first.input.columns {
            report
                .mismatches
                .push(format!("{shard} has other metadata columns"));
        }
    }

    // Every row's id, once; where a second copy turns up it is a duplicate.
    let mut present = HashSet::new();
    for (shard, _, path) in &listing.parts {
        let part = read_ids(path, CheckVectors::All)?;
        report.rows += part.ids.len() as u64;
        report.non_finite += part.non_finite.len() as u64;
        for &row in &part.non_finite {
            let id = part.ids.get(row).cloned().unwrap_or_default();
            report.example("non-finite vector", &id);
        }
        for id in part.ids {
            let hash = id_hash(&id);
            if Shard::of_hash(hash, shard.count()) != shard.index() {
                report.wrong_shard += 1;
                report.example("in the wrong shard", &id);
            }
            if !present.insert(hash) {
                report.duplicate_ids += 1;
                report.example("duplicate", &id);
            }
        }
    }
    let failed: HashSet<u128> = manifests
        .iter()
        .flat_map(|(_, m)| &m.failures)
        .filter(|f| !f.malformed)
        .filter_map(|f| f.id.as_ref().map(|id| id_hash(id.as_str())))
        .collect();

    let input: PathBuf = input.map_or_else(|| first.input.path.clone(), Path::to_path_buf);
    let mut reader = JsonlReader::open(&input, &first.input.id_field, &first.input.text_field)?;
    let mut seen = HashSet::new();
    while let Some(line) = reader.next_line()? {
        let Line::Record(record) = line else {
            continue;
        };
        let hash = id_hash(record.id.as_str());
        if !seen.insert(hash) {
            continue;
        }
        report.input_ids += 1;
        // Same order as the job: an id already in the output counts whatever its text now.
        if present.remove(&hash) {
            report.expected += 1;
        } else if record.text.trim().is_empty() {
            continue;
        } else if failed.contains(&hash) {
            report.expected += 1;
            report.failed += 1;
        } else {
            report.expected += 1;
            report.missing += 1;
            report.example("missing", record.id.as_str());
        }
    }
    report.unexpected = present.len() as u64;
    Ok(report)
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} shard(s), {} rows, {} expected ids",
            self.shard_count, self.rows, self.expected
        )?;
        if !self.missing_shards.is_empty() {
            writeln!(f, "  shards without a manifest: {:?}", self.missing_shards)?;
        }
        if !self.incomplete_shards.is_empty() {
            writeln!(f, "  shards not finished: {:?}", self.incomplete_shards)?;
        }
        for mismatch in &self.mismatches {
            writeln!(f, "  mismatch: {mismatch}")?;
        }
        for (label, n) in [
            ("duplicate ids", self.duplicate_ids),
            ("ids in the wrong shard", self.wrong_shard),
            ("failed (listed in manifests)", self.failed),
            ("missing", self.missing),
            ("unexpected (not in the input)", self.unexpected),
            ("non-finite vectors (NaN or infinity)", self.non_finite),
        ] {
            if n > 0 {
                writeln!(f, "  {label}: {n}")?;
            }
        }
        for example in &self.examples {
            writeln!(f, "  e.g. {example}")?;
        }
        if self.expected == 0 && self.input_ids > 0 {
            writeln!(
                f,
                "  nothing to expect: none of the {} input ids has a text (wrong text field?)",
                self.input_ids
            )?;
        }
        if self.ok() {
            write!(f, "  OK: complete and duplicate-free")
        } else {
            write!(f, "  NOT OK")
        }
    }
}
