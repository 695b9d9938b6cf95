//! Record ids as the input wrote them: a JSON string or a JSON number.
//!
//! The output's `id` column is text (one Parquet type for every shard and reader), so `42` and
//! `"42"` would both become `"42"` there. The job keeps the JSON type everywhere else (reports,
//! manifests, the list of records not embedded) and refuses the ambiguity: a second record
//! whose id has the same text but the other type is an id conflict, listed and never embedded.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A record's id, with its JSON type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordId {
    text: String,
    number: bool,
}

impl RecordId {
    /// An id that was a JSON string.
    pub fn string(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            number: false,
        }
    }

    /// An id that was a JSON number (kept as written, `1e3` stays `1e3`).
    pub fn number(number: &serde_json::Number) -> Self {
        Self {
            text: number.to_string(),
            number: true,
        }
    }

    /// The id as text: what the output's `id` column holds and what decides its shard.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the input wrote it as a JSON number.
    pub fn is_number(&self) -> bool {
        self.number
    }
}

/// As JSON: `42` for a number, `"42"` for a string, so the two never read alike.
impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.number {
            f.write_str(&self.text)
        } else {
            write!(f, "{}", Value::String(self.text.clone()))
        }
    }
}

impl Serialize for RecordId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self
            .number
            .then(|| self.text.parse::<serde_json::Number>().ok())
            .flatten()
        {
            Some(number) => number.serialize(serializer),
            None => serializer.serialize_str(&self.text),
        }
    }
}

impl<'de> Deserialize<'de> for RecordId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => Ok(Self::string(text)),
            Value::Number(number) => Ok(Self::number(&number)),
            other => Err(serde::de::Error::custom(format!(
                "a record id is a string or a number, not {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_json_type() {
        let number = RecordId::number(&42.into());
        let string = RecordId::string("42");
        assert_eq!(number.as_str(), string.as_str());
        assert_ne!(number, string);
        assert_eq!(
            (number.to_string(), string.to_string()),
            ("42".into(), "\"42\"".into())
        );
        for id in [number, string] {
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(serde_json::from_str::<RecordId>(&json).unwrap(), id);
        }
    }
}
