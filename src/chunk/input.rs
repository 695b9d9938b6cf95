//! One entry point for every supported source of messages.

use std::path::Path;

use super::export::read_messenger;
use super::jsonl::read_jsonl;
use super::message::Message;
use crate::error::{Error, Result};

/// Reads messages from a Messenger export folder (searched recursively for `message_N.json`),
/// a single `message_N.json` file, or a `.jsonl` file of messages, chosen by what `path` is.
///
/// Fails with [`Error::Malformed`] for a file that is neither `.json` nor `.jsonl`, and with
/// [`Error::Io`] when `path` does not exist.
pub fn read_messages(path: &Path) -> Result<Vec<Message>> {
    if path.is_dir() {
        return read_messenger(path);
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl") => read_jsonl(path),
        Some("json") => read_messenger(path),
        _ if !path.exists() => Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }),
        _ => Err(Error::Malformed {
            path: path.to_path_buf(),
            reason: "expected an export folder, a message_N.json file or a .jsonl file".into(),
        }),
    }
}
