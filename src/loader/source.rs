//! Where a model's files come from: a directory on disk or a Hugging Face repo (see `hub.rs`),
//! behind one trait, and the JSON reader every metadata file goes through.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where a model's files come from.
pub(crate) trait FileSource {
    /// How to name the model in messages: the directory or the repo id.
    fn describe(&self) -> String;
    /// The local path of `file`, or `None` if the model has no such file.
    fn get(&self, file: &str) -> Result<Option<PathBuf>>;

    /// Like [`FileSource::get`], but the file must exist.
    fn require(&self, file: &str) -> Result<PathBuf> {
        self.get(file)?.ok_or_else(|| Error::MissingFile {
            model: self.describe(),
            file: file.to_string(),
        })
    }
}

/// A model directory on disk.
pub(crate) struct LocalDir(pub PathBuf);

impl FileSource for LocalDir {
    fn describe(&self) -> String {
        self.0.display().to_string()
    }

    /// A file that cannot be looked at (permissions) is an error naming it, not a missing file.
    fn get(&self, file: &str) -> Result<Option<PathBuf>> {
        let path = self.0.join(file);
        match std::fs::metadata(&path) {
            Ok(meta) => Ok(meta.is_file().then_some(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io { path, source }),
        }
    }
}

/// Reads and parses a JSON file, naming it in any error.
pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // Editors on Windows write a byte-order mark that JSON parsers do not expect.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    serde_json::from_str(text).map_err(|e| Error::Malformed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}
