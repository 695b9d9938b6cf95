#![allow(dead_code)] // each example uses part of this module

//! Output files of the examples (`embed`, `chunk_messages`), shared through `#[path]`.
//!
//! An output is claimed before any work starts ([`Output::claim`]): its format comes from
//! `--format` or the file's extension, and the folder it goes into must exist and take a new
//! file, so a typo in `--output` costs nothing rather than a whole embedding run. The data is then
//! written to a temporary file next to the destination (`.NAME.XXXXXX.tmp`), flushed to disk and
//! renamed over the destination ([`Output::commit`]): a run that fails at any point, a full disk
//! included, leaves an earlier file of the same name as it was. Only `kill -9` or a crash can
//! leave the temporary file behind; it is never mistaken for the output.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// What an output file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A float32 C-order `[n, dim]` NumPy array.
    Npy,
    /// One JSON value per line.
    Jsonl,
}

impl Format {
    /// The format an extension names, compared without case (`.NPY` is an `.npy` file to
    /// `numpy.load` and to anyone reading the name). `None` for anything else.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "npy" => Some(Format::Npy),
            "jsonl" => Some(Format::Jsonl),
            _ => None,
        }
    }

    /// `--format` when given, else the extension's; `allowed` lists what the example writes.
    pub fn resolve(
        path: &Path,
        given: Option<Format>,
        allowed: &[Format],
    ) -> anyhow::Result<Format> {
        let names = || {
            allowed
                .iter()
                .map(|f| format!(".{}", f.name()))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        let format = match given {
            Some(format) => format,
            None => Format::from_extension(path).with_context(|| {
                format!(
                    "cannot tell the format of {} from its name: name it {}, or pass --format",
                    path.display(),
                    names()
                )
            })?,
        };
        if !allowed.contains(&format) {
            bail!(
                "{} would be {}, which this program does not write: name it {}",
                path.display(),
                format.name(),
                names()
            );
        }
        Ok(format)
    }

    fn name(self) -> &'static str {
        match self {
            Format::Npy => "npy",
            Format::Jsonl => "jsonl",
        }
    }
}

/// A destination checked and claimed: the temporary file beside it already exists.
pub struct Output {
    path: PathBuf,
    format: Format,
    temp: tempfile::NamedTempFile,
}

impl Output {
    /// Checks `path` and creates the temporary file its data will go to. Refuses a directory, a
    /// folder that does not exist or is not a folder, a folder that does not take new files, and
    /// a name whose format is unknown (see [`Format::resolve`]).
    pub fn claim(path: &Path, given: Option<Format>, allowed: &[Format]) -> anyhow::Result<Output> {
        if path.is_dir() {
            bail!(
                "--output {} is a directory; name a file in it",
                path.display()
            );
        }
        let format = Format::resolve(path, given, allowed)?;
        let Some(name) = path.file_name() else {
            bail!("--output {} does not name a file", path.display());
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !parent.exists() {
            bail!(
                "the folder of --output {} does not exist: create it first (mkdir -p {})",
                path.display(),
                parent.display()
            );
        }
        if !parent.is_dir() {
            bail!(
                "--output {}: {} is not a folder",
                path.display(),
                parent.display()
            );
        }
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // A plain new file (0666 less the umask) rather than the temporary file's private 0600;
        // a file that is replaced keeps its mode.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_or(0o666, |m| m.permissions().mode() & 0o7777);
            builder.permissions(std::fs::Permissions::from_mode(mode));
        }
        let temp = builder.tempfile_in(parent).with_context(|| {
            format!(
                "cannot write --output {}: creating a file in {} failed",
                path.display(),
                parent.display()
            )
        })?;
        Ok(Output {
            path: path.to_path_buf(),
            format,
            temp,
        })
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format the data must be written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Writes the data with `write`, flushes it to disk and renames it over the destination. If
    /// `write` or any step fails, the temporary file is removed and the destination untouched.
    pub fn commit(
        self,
        write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let Output { path, temp, .. } = self;
        let context = || format!("writing {}", path.display());
        {
            let mut writer = BufWriter::new(temp.as_file());
            write(&mut writer).with_context(context)?;
            writer.flush().with_context(context)?;
        }
        temp.as_file().sync_all().with_context(context)?;
        temp.persist(&path)
            .map_err(|e| e.error)
            .with_context(context)?;
        // The rename itself is durable once the folder is.
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("syncing {}", parent.display()))?;
        Ok(())
    }
}

/// Rows of a matrix that hold a NaN or an infinity, in order.
pub fn non_finite_rows(rows: ndarray::ArrayView2<f32>) -> Vec<usize> {
    rows.rows()
        .into_iter()
        .enumerate()
        .filter(|(_, row)| row.iter().any(|v| !v.is_finite()))
        .map(|(index, _)| index)
        .collect()
}
