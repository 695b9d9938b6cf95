//! The list of every record of a shard that has no vector, and why: `_not_embedded.jsonl`
//! (`_not_embedded-s0003of0008.jsonl` for a shard), one JSON object per line, beside the
//! manifest. Counts say how many; this file says which, with no cap (the manifest lists at most
//! 10,000 failures).
//!
//! Each run sorts the whole input again, so each run writes the whole list: appended to a
//! temporary file as records are met, made durable and renamed into place when the run ends or
//! is stopped. A killed run leaves the temporary file, which the next run deletes, and the
//! previous run's list stays in place. Its name starts with `_` so that Parquet readers of the
//! directory skip it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::Error;
use super::id::RecordId;
use super::output::sync_dir;
use super::shard::Shard;

/// Why a record has no vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Why {
    /// The line is not a usable record (not UTF-8 or JSON, no id, a text that is no string).
    Malformed,
    /// The model failed on it, or gave a non-finite vector. Retried by the next run.
    Failed,
    /// Its text is missing, null or only whitespace.
    Empty,
    /// Its id appeared earlier with another text; the first occurrence was kept.
    DuplicateOtherText,
    /// Its id has the text of an earlier id of the other JSON type (`42` and `"42"`), which the
    /// output's text `id` column could not tell apart; the first one was kept.
    IdConflict,
}

/// One record without a vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Skipped {
    /// 1-based input line.
    pub line: u64,
    /// Its id with its JSON type, when it has one.
    pub id: Option<RecordId>,
    /// Why it has no vector.
    pub why: Why,
    /// The details, in words.
    pub reason: String,
}

/// `_not_embedded.jsonl`, or `_not_embedded-s0003of0008.jsonl` for a shard.
pub(crate) fn file_name(shard: Shard) -> String {
    format!("_not_embedded{}.jsonl", shard.tag())
}

/// The list being written by this run.
pub(crate) struct SkipList {
    path: PathBuf,
    tmp: PathBuf,
    /// `None` once committed.
    file: Option<BufWriter<File>>,
}

impl SkipList {
    pub(crate) fn create(dir: &Path, shard: Shard) -> Result<Self, Error> {
        let name = file_name(shard);
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        Ok(Self {
            path: dir.join(name),
            tmp,
            file: Some(BufWriter::new(file)),
        })
    }

    pub(crate) fn push(&mut self, skipped: &Skipped) -> Result<(), Error> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        serde_json::to_writer(&mut *file, skipped)
            .map_err(std::io::Error::from)
            .and_then(|()| file.write_all(b"\n"))
            .map_err(Error::io("write", &self.tmp))
    }

    /// Makes the list durable under its final name; returns that name. Later pushes are
    /// dropped.
    pub(crate) fn commit(&mut self) -> Result<String, Error> {
        let Some(file) = self.file.take() else {
            return Ok(String::new());
        };
        let file = file
            .into_inner()
            .map_err(|e| Error::io("write", &self.tmp)(e.into_error()))?;
        file.sync_all().map_err(Error::io("write", &self.tmp))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(Error::io("rename into", &self.path))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        Ok(self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default())
    }
}

/// Reads a list back (for tests and tools).
pub fn read_skipped(path: &Path) -> Result<Vec<Skipped>, Error> {
    let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| Error::Malformed {
                path: path.to_path_buf(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}
