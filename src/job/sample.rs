//! The first records of the input, read once at the start of the stream and kept in memory:
//! they decide the metadata columns ([`super::schema::infer`]) and catch a wrong text field
//! before anything is written, then go to the sorter like every later line. So the input is
//! read exactly once.

use std::collections::HashMap;
use std::path::Path;

use super::error::Error;
use super::input::{JsonlReader, Line};

/// Records read before the stream starts: enough to meet the fields of a uniform corpus, few
/// enough to cost nothing (fields first seen later go to `metadata_extra`).
pub(crate) const SAMPLE_RECORDS: usize = 1000;

/// The first lines of the input (records and the malformed lines among them).
pub(crate) struct Sample {
    pub lines: Vec<Line>,
}

impl Sample {
    /// Reads lines until `SAMPLE_RECORDS` records or the end of the input.
    pub(crate) fn read(reader: &mut JsonlReader) -> Result<Self, Error> {
        let mut lines = Vec::new();
        let mut records = 0;
        while records < SAMPLE_RECORDS {
            let Some(line) = reader.next_line()? else {
                break;
            };
            records += usize::from(matches!(line, Line::Record(_)));
            lines.push(line);
        }
        Ok(Self { lines })
    }

    /// The records of the sample.
    pub(crate) fn records(&self) -> impl Iterator<Item = &super::input::Record> {
        self.lines.iter().filter_map(|line| match line {
            Line::Record(record) => Some(record),
            Line::Malformed { .. } => None,
        })
    }

    /// Refuses a text field that fewer than half of the sampled records have (absent, not
    /// `null`): a typo such as `--text-field body` would otherwise count every record as an
    /// empty text, embed nothing and report success.
    pub(crate) fn check_text_field(&self, input: &Path, field: &str) -> Result<(), Error> {
        let (mut sampled, mut present) = (0, 0);
        let mut fields: HashMap<&str, usize> = HashMap::new();
        for record in self.records() {
            sampled += 1;
            present += usize::from(!record.text_missing);
            for name in record.fields.keys() {
                *fields.entry(name.as_str()).or_default() += 1;
            }
        }
        if sampled == 0 || present * 2 >= sampled {
            return Ok(());
        }
        let mut seen: Vec<(&str, usize)> = fields.into_iter().collect();
        seen.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let seen: Vec<String> = seen.iter().take(12).map(|(n, _)| n.to_string()).collect();
        let suggestion = seen
            .iter()
            .map(|name| (strsim::jaro_winkler(name, field), name))
            .filter(|(score, _)| *score > 0.7)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, name)| name.clone());
        Err(Error::TextFieldMissing {
            input: input.to_path_buf(),
            field: field.to_string(),
            sampled,
            present,
            seen,
            suggestion,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn refuses_a_text_field_most_records_lack() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for i in 0..10 {
            let body = if i < 4 { ", \"body\": \"x\"" } else { "" };
            writeln!(file, "{{\"id\": {i}, \"text\": \"t\"{body}}}").unwrap();
        }
        let sample = |field| {
            let mut reader = JsonlReader::open(file.path(), "id", field).unwrap();
            Sample::read(&mut reader).unwrap()
        };
        assert!(sample("text").check_text_field(file.path(), "text").is_ok());
        let error = sample("body")
            .check_text_field(file.path(), "body")
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("4 of the first 10"), "{message}");
        let error = sample("txet")
            .check_text_field(file.path(), "txet")
            .unwrap_err();
        assert!(
            error.to_string().contains("did you mean `text`?"),
            "{error}"
        );
    }
}
