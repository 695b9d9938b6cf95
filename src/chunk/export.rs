//! The Facebook/Messenger JSON export (`messages/inbox/<thread>/message_N.json`), and the repair
//! of its text encoding.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::message::{fill_missing_ids, Flags, Message};
use crate::error::{Error, Result};

/// Undoes the export's text corruption: it writes each byte of the UTF-8 text as its own `\u00XX`
/// escape, so after JSON parsing "😂" reads "ðŸ˜‚" and "ł" reads "Å‚". A string whose characters
/// all lie below U+0100 is read back as bytes and decoded as UTF-8; anything else (a string with
/// a real character above U+00FF, or bytes that are not valid UTF-8, such as a genuine "café"
/// from a fixed exporter) is returned as it is, so repairing twice changes nothing.
pub fn repair_mojibake(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    let bytes: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(c).ok()).collect();
    match bytes.map(String::from_utf8) {
        Some(Ok(repaired)) => Cow::Owned(repaired),
        _ => Cow::Borrowed(text),
    }
}

/// Reads a Messenger export: a folder searched recursively for `message_N.json` files, or one
/// such file. Each folder of files is one thread; its id is the export's `thread_path`, or the
/// folder name when that is missing. Messages come back in time order (the files list the
/// newest first, and `message_1.json` holds the newest), with repaired text, the sender's name as
/// sender id (the export has no ids) and a [`Message::derived_id`] each.
///
/// The files of a long thread can overlap: a message found in more than one of them (same
/// sender, timestamp, text and flags) is kept once. Repeats within one file are kept, since
/// nothing tells them apart from a message really sent twice in the same millisecond.
///
/// Fails with [`Error::Malformed`] for a folder that holds no `message_N.json` file at any depth
/// (most often the wrong folder: the export's `messages/inbox` or one above it is wanted).
pub fn read_messenger(path: &Path) -> Result<Vec<Message>> {
    let mut files = if path.is_dir() {
        let mut found = Vec::new();
        find_message_files(path, &mut found)?;
        if found.is_empty() {
            return Err(Error::Malformed {
                path: path.to_path_buf(),
                reason: "no message_N.json file in this folder or below it; expected a \
                         Messenger export (messages/inbox/<thread>/message_1.json)"
                    .into(),
            });
        }
        found
    } else {
        vec![path.to_path_buf()]
    };
    // Thread by thread, oldest file first.
    files.sort_by_cached_key(|f| (f.parent().map(Path::to_path_buf), Reverse(file_number(f))));
    let mut messages = Vec::new();
    let mut repeats = Repeats::default();
    for file in &files {
        read_file(file, &mut messages, &mut repeats)?;
    }
    if repeats.dropped > 0 {
        tracing::info!(
            "{}: dropped {} messages repeated across the files of a thread",
            path.display(),
            repeats.dropped
        );
    }
    fill_missing_ids(&mut messages);
    Ok(messages)
}

/// What makes two messages of one thread the same message.
#[derive(PartialEq, Eq, Hash)]
struct MessageKey {
    thread_id: String,
    sender: String,
    timestamp_ms: i64,
    content: Option<String>,
    flags: Flags,
}

/// The messages of the files read so far, as a multiset: a file repeats a message when it holds
/// it no more often than an earlier file of its thread did, so a file's `k`-th copy of a message
/// is new only when no earlier file had `k` copies.
#[derive(Default)]
struct Repeats {
    /// Most copies of each message found in one file so far.
    most: HashMap<MessageKey, usize>,
    dropped: usize,
}

impl Repeats {
    /// Which of one file's messages (given by key, in order) are new; records the file.
    fn keep(&mut self, keys: Vec<MessageKey>) -> Vec<bool> {
        let mut in_file: HashMap<&MessageKey, usize> = HashMap::new();
        let mut keep = Vec::with_capacity(keys.len());
        for key in &keys {
            let copies = in_file.entry(key).or_insert(0);
            *copies += 1;
            let new = *copies > self.most.get(key).copied().unwrap_or(0);
            self.dropped += usize::from(!new);
            keep.push(new);
        }
        let counts: Vec<usize> = keys.iter().map(|k| in_file[k]).collect();
        for (key, copies) in keys.into_iter().zip(counts) {
            let most = self.most.entry(key).or_insert(0);
            *most = (*most).max(copies);
        }
        keep
    }
}

/// `N` of `message_N.json`, or `None` for any other name.
fn file_number(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("message_")?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

fn find_message_files(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            find_message_files(&path, found)?;
        } else if file_number(&path).is_some() {
            found.push(path);
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct ExportFile {
    #[serde(default)]
    participants: Vec<Participant>,
    #[serde(default)]
    messages: Vec<ExportMessage>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    thread_path: String,
}

#[derive(Deserialize)]
struct Participant {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct ExportMessage {
    #[serde(default)]
    sender_name: String,
    timestamp_ms: i64,
    content: Option<String>,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    is_unsent: bool,
    call_duration: Option<IgnoredAny>,
    photos: Option<IgnoredAny>,
    videos: Option<IgnoredAny>,
    audio_files: Option<IgnoredAny>,
    files: Option<IgnoredAny>,
    gifs: Option<IgnoredAny>,
    sticker: Option<IgnoredAny>,
}

impl ExportMessage {
    fn flags(&self) -> Flags {
        Flags {
            unsent: self.is_unsent,
            call: self.kind == "Call" || self.call_duration.is_some(),
            system: matches!(self.kind.as_str(), "Subscribe" | "Unsubscribe"),
            attachment: self.photos.is_some()
                || self.videos.is_some()
                || self.audio_files.is_some()
                || self.files.is_some()
                || self.gifs.is_some()
                || self.sticker.is_some(),
        }
    }
}

/// Appends one file's messages, oldest first, leaving out those an earlier file already held.
fn read_file(path: &Path, messages: &mut Vec<Message>, repeats: &mut Repeats) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file: ExportFile = serde_json::from_str(&text).map_err(|e| Error::Malformed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let thread_id = if file.thread_path.is_empty() {
        path.parent().and_then(Path::file_name).map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    } else {
        repair_mojibake(&file.thread_path).into_owned()
    };
    let thread_name = if file.title.is_empty() {
        // No title: name the thread after its participants, as Messenger does.
        let names: Vec<_> = file.participants.iter().map(|p| p.name.as_str()).collect();
        repair_mojibake(&names.join(", ")).into_owned()
    } else {
        repair_mojibake(&file.title).into_owned()
    };
    let keys = file
        .messages
        .iter()
        .rev()
        .map(|m| MessageKey {
            thread_id: thread_id.clone(),
            sender: m.sender_name.clone(),
            timestamp_ms: m.timestamp_ms,
            content: m.content.clone(),
            flags: m.flags(),
        })
        .collect();
    let keep = repeats.keep(keys);
    for (message, _) in file.messages.iter().rev().zip(keep).filter(|(_, new)| *new) {
        let sender = repair_mojibake(&message.sender_name).into_owned();
        messages.push(Message {
            id: String::new(),
            thread_id: thread_id.clone(),
            thread_name: thread_name.clone(),
            sender_id: sender.clone(),
            sender_name: sender,
            timestamp_ms: message.timestamp_ms,
            text: repair_mojibake(message.content.as_deref().unwrap_or("")).into_owned(),
            flags: message.flags(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_numbers() {
        assert_eq!(file_number(Path::new("a/message_12.json")), Some(12));
        assert_eq!(file_number(Path::new("a/message_x.json")), None);
        assert_eq!(file_number(Path::new("a/photo_1.json")), None);
    }
}
