//! JSON Lines in and out: messages one per line in, chunks one per line out.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use super::message::{fill_missing_ids, Message};
use super::window::Chunk;
use crate::error::{Error, Result};

/// Reads a JSONL file of messages (see [`parse_jsonl`]).
pub fn read_jsonl(path: &Path) -> Result<Vec<Message>> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_jsonl(BufReader::new(file), path)
}

/// Parses messages, one JSON object per line, with the fields of [`Message`]: `thread_id` and
/// `timestamp_ms` are required, the rest default to empty. Blank lines are skipped. Messages
/// without an `id` get [`Message::derived_id`]. `path` only names the source in errors.
pub fn parse_jsonl(reader: impl BufRead, path: &Path) -> Result<Vec<Message>> {
    let mut messages = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let message: Message = serde_json::from_str(&line).map_err(|e| Error::Malformed {
            path: path.to_path_buf(),
            reason: format!("line {}: {e}", index + 1),
        })?;
        messages.push(message);
    }
    fill_missing_ids(&mut messages);
    Ok(messages)
}

/// Writes chunks as JSON Lines, one object per chunk with the fields of [`Chunk`]. `path` only
/// names the destination in errors.
pub fn write_chunks_jsonl(mut writer: impl Write, chunks: &[Chunk], path: &Path) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    for chunk in chunks {
        serde_json::to_writer(&mut writer, chunk).map_err(|e| io(e.into()))?;
        writer.write_all(b"\n").map_err(io)?;
    }
    writer.flush().map_err(io)
}
