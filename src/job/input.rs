//! Streaming JSONL input: one record per line, read in bounded memory whatever the file's size,
//! and a fingerprint that tells whether the file changed between runs.
//!
//! Any JSON object with an id and a text field is a record; every other field is kept as
//! metadata. That covers the chunk JSONL that `rembed::chunk` writes (`--id-field chunk_id
//! --text-field text`) without depending on its types.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::Error;
use super::hash::{hex, Fnv128};
use super::id::RecordId;

/// One input line, classified.
#[derive(Debug)]
pub(crate) enum Line {
    /// A JSON object with a usable id.
    Record(Record),
    /// A line that is not a record: not UTF-8, not a JSON object, no usable id, or a text that
    /// is not a string. Counted and reported, never silently dropped.
    Malformed {
        line: u64,
        /// Byte offset just past the line.
        end: u64,
        id: Option<RecordId>,
        reason: String,
    },
}

impl Line {
    /// 1-based line number and byte offset just past the line.
    pub(crate) fn position(&self) -> (u64, u64) {
        match self {
            Line::Record(r) => (r.line, r.end),
            Line::Malformed { line, end, .. } => (*line, *end),
        }
    }
}

/// A record: its id, its text (empty when the field is missing or null) and the other fields.
#[derive(Debug)]
pub(crate) struct Record {
    /// 1-based line number, for reports.
    pub line: u64,
    /// Byte offset just past the line: how far into the input the job is once it is done.
    pub end: u64,
    pub id: RecordId,
    pub text: String,
    /// Whether the text field was absent (not merely `null` or empty): a wrong `--text-field`.
    pub text_missing: bool,
    pub fields: Map<String, Value>,
}

/// UTF-8's byte order mark, which some Windows tools write at the start of a text file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads records from a JSONL file one line at a time.
pub(crate) struct JsonlReader {
    path: PathBuf,
    reader: BufReader<File>,
    buf: Vec<u8>,
    line: u64,
    /// Bytes consumed so far.
    offset: u64,
    id_field: String,
    text_field: String,
}

impl JsonlReader {
    pub(crate) fn open(path: &Path, id_field: &str, text_field: &str) -> Result<Self, Error> {
        let file = File::open(path).map_err(Error::io("open", path))?;
        Ok(Self {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, file),
            buf: Vec::new(),
            line: 0,
            offset: 0,
            id_field: id_field.to_string(),
            text_field: text_field.to_string(),
        })
    }

    /// The next non-blank line, or `None` at the end of the file.
    pub(crate) fn next_line(&mut self) -> Result<Option<Line>, Error> {
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(Error::io("read", &self.path))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            self.offset += n as u64;
            if self.line == 1 && self.buf.starts_with(BOM) {
                self.buf.drain(..BOM.len());
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(self.parse()));
        }
    }

    fn parse(&mut self) -> Line {
        let (line, end) = (self.line, self.offset);
        let malformed = |id: Option<RecordId>, reason: String| Line::Malformed {
            line,
            end,
            id,
            reason,
        };
        if let Err(e) = std::str::from_utf8(&self.buf) {
            return malformed(
                None,
                format!(
                    "not UTF-8 (invalid byte at column {}): convert the file to UTF-8, \
                     e.g. with `iconv -f latin1 -t utf-8`",
                    e.valid_up_to() + 1
                ),
            );
        }
        let mut fields: Map<String, Value> = match serde_json::from_slice(&self.buf) {
            Ok(fields) => fields,
            Err(e) => return malformed(None, format!("not a JSON object: {}", json_error(&e))),
        };
        let id = match fields.remove(&self.id_field) {
            Some(Value::String(id)) if !id.is_empty() => RecordId::string(id),
            Some(Value::Number(n)) => RecordId::number(&n),
            Some(Value::String(_)) => return malformed(None, "empty id".into()),
            None | Some(Value::Null) => {
                return malformed(None, format!("no `{}` field", self.id_field))
            }
            Some(other) => {
                return malformed(
                    None,
                    format!(
                        "`{}` is {}, not a string or number",
                        self.id_field,
                        kind(&other)
                    ),
                )
            }
        };
        let (text, text_missing) = match fields.remove(&self.text_field) {
            Some(Value::String(text)) => (text, false),
            Some(Value::Null) => (String::new(), false),
            None => (String::new(), true),
            Some(other) => {
                let reason = format!("`{}` is {}, not a string", self.text_field, kind(&other));
                return malformed(Some(id), reason);
            }
        };
        Line::Record(Record {
            line,
            end,
            id,
            text,
            text_missing,
            fields,
        })
    }
}

/// serde_json's message without its "at line 1 column 7": every line is parsed on its own, so
/// its line would always read 1; the report gives the input line instead.
fn json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let what = message
        .rfind(" at line ")
        .map_or(message.as_str(), |at| &message[..at]);
    format!("{what} at column {}", e.column())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What identifies an input file's content cheaply: its size, modification time and hashes of
/// its first and last MiB. Catches appends, truncation, rewrites and in-place edits near either
/// end; compared at every resume so that a changed input is reported, not silently mixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Fingerprint {
    /// File size in bytes.
    pub bytes: u64,
    /// Modification time, nanoseconds since the Unix epoch, where the file system keeps one.
    pub modified_unix_ns: Option<u128>,
    /// 128-bit FNV-1a (hex) of the first MiB.
    pub head: String,
    /// 128-bit FNV-1a (hex) of the last MiB.
    pub tail: String,
}

const FINGERPRINT_SPAN: u64 = 1 << 20;

impl Fingerprint {
    /// Fingerprints the file at `path`.
    pub fn of(path: &Path) -> Result<Self, Error> {
        let io = |e| Error::io("read", path)(e);
        let mut file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        let modified_unix_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos());
        let bytes = meta.len();
        let mut span = |start: u64| -> Result<String, Error> {
            file.seek(SeekFrom::Start(start)).map_err(io)?;
            let mut buf = Vec::new();
            (&mut file)
                .take(FINGERPRINT_SPAN)
                .read_to_end(&mut buf)
                .map_err(io)?;
            let mut hash = Fnv128::new();
            hash.update(&buf);
            Ok(hex(hash.finish()))
        };
        let head = span(0)?;
        let tail = span(bytes.saturating_sub(FINGERPRINT_SPAN))?;
        Ok(Self {
            bytes,
            modified_unix_ns,
            head,
            tail,
        })
    }

    /// What differs from an earlier fingerprint, in words; `None` when nothing does.
    pub fn changes_since(&self, earlier: &Fingerprint) -> Option<String> {
        let mut changes = Vec::new();
        if self.bytes != earlier.bytes {
            changes.push(format!("size {} -> {} bytes", earlier.bytes, self.bytes));
        }
        if self.modified_unix_ns != earlier.modified_unix_ns {
            changes.push("modification time".to_string());
        }
        if self.head != earlier.head {
            changes.push("content of the first MiB".to_string());
        }
        if self.tail != earlier.tail {
            changes.push("content of the last MiB".to_string());
        }
        (!changes.is_empty()).then(|| changes.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn reader(content: &str) -> (tempfile::NamedTempFile, JsonlReader) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content.as_bytes()).unwrap();
        let reader = JsonlReader::open(file.path(), "chunk_id", "text").unwrap();
        (file, reader)
    }

    #[test]
    fn classifies_records_and_malformed_lines() {
        let (_file, mut reader) = reader(concat!(
            "\u{feff}{\"chunk_id\": \"a\", \"text\": \"héllo\", \"thread_id\": \"t1\", \"session_idx\": 2}\n",
            "\n",
            "{\"chunk_id\": 7, \"text\": null}\n",
            "not json\n",
            "{\"text\": \"no id\"}\n",
            "{\"chunk_id\": \"b\", \"text\": [1]}\n",
            "{\"chunk_id\": \"c\"}",
        ));
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            lines.push(line);
        }
        assert_eq!(lines.len(), 6);
        // The byte order mark is not part of the first record.
        let Line::Record(first) = &lines[0] else {
            panic!("{:?}", lines[0])
        };
        assert_eq!((first.id.as_str(), first.text.as_str()), ("a", "héllo"));
        assert!(!first.id.is_number());
        assert_eq!(first.fields.len(), 2);
        let Line::Record(second) = &lines[1] else {
            panic!("{:?}", lines[1])
        };
        assert_eq!(
            (second.line, second.id.as_str(), second.text.as_str()),
            (3, "7", "")
        );
        assert!(second.id.is_number() && !second.text_missing);
        let Line::Malformed {
            line: 4,
            id: None,
            reason,
            ..
        } = &lines[2]
        else {
            panic!("{:?}", lines[2])
        };
        assert!(
            reason.contains("at column 2") && !reason.contains("line"),
            "{reason}"
        );
        assert!(matches!(
            &lines[3],
            Line::Malformed {
                line: 5,
                id: None,
                ..
            }
        ));
        assert!(
            matches!(&lines[4], Line::Malformed { line: 6, id: Some(id), .. } if id.as_str() == "b")
        );
        let Line::Record(last) = &lines[5] else {
            panic!("{:?}", lines[5])
        };
        assert!(last.text_missing);
        assert_eq!(last.end, _file.as_file().metadata().unwrap().len());
    }

    #[test]
    fn invalid_utf8_is_a_malformed_line_with_its_column() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(
            b"{\"chunk_id\": 1, \"text\": \"ok\"}\n{\"chunk_id\": 2, \"text\": \"caf\xe9\"}\n",
        )
        .unwrap();
        let mut reader = JsonlReader::open(file.path(), "chunk_id", "text").unwrap();
        assert!(matches!(reader.next_line().unwrap(), Some(Line::Record(_))));
        let Some(Line::Malformed { line, reason, .. }) = reader.next_line().unwrap() else {
            panic!("invalid UTF-8 accepted")
        };
        assert_eq!(line, 2);
        assert!(
            reason.contains("not UTF-8") && reason.contains("column 29"),
            "{reason}"
        );
    }

    #[test]
    fn fingerprint_sees_appends() {
        let (mut file, _) = reader("{\"chunk_id\": \"a\"}\n");
        let before = Fingerprint::of(file.path()).unwrap();
        assert_eq!(before.changes_since(&before), None);
        file.write_all(b"{\"chunk_id\": \"b\"}\n").unwrap();
        let after = Fingerprint::of(file.path()).unwrap();
        let changes = after.changes_since(&before).unwrap();
        assert!(changes.contains("size"), "{changes}");
    }
}
