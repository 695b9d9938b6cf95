//! [`Message`]: one chat message, as read from a JSONL file or a Messenger export.

use serde::{Deserialize, Serialize};

use super::hash::IdHasher;

/// One chat message.
///
/// Every field but `thread_id` and `timestamp_ms` may be empty in input files; readers fill `id`
/// with a content hash ([`Message::derived_id`]) when the source has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Unique id of the message within its source.
    #[serde(default)]
    pub id: String,
    /// Conversation the message belongs to.
    pub thread_id: String,
    /// Human-readable conversation name (a group title, the other person's name).
    #[serde(default)]
    pub thread_name: String,
    /// Stable id of the sender; coalescing compares these, not names.
    #[serde(default)]
    pub sender_id: String,
    /// Display name of the sender, written into chunk text as `[Sender Name]: `.
    #[serde(default)]
    pub sender_name: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The message text; empty for photos, stickers and other attachment-only messages.
    #[serde(default)]
    pub text: String,
    /// What the source said about the message besides its text (unsent, call, attachment).
    #[serde(default, skip_serializing_if = "Flags::is_empty")]
    pub flags: Flags,
}

/// Facts a source states in its fields rather than in the text. [`super::Filter`] checks these
/// before any text pattern, because they are exact where text patterns only guess.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Flags {
    /// The sender unsent (deleted) the message.
    #[serde(default)]
    pub unsent: bool,
    /// A call or video chat record rather than a message.
    #[serde(default)]
    pub call: bool,
    /// The message carries photos, videos, audio, files, GIFs or a sticker.
    #[serde(default)]
    pub attachment: bool,
    /// A membership or settings event (someone joined, left, renamed the group).
    #[serde(default)]
    pub system: bool,
}

impl Flags {
    /// Whether no flag is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Message {
    /// A stable id from the message's content, for sources that have none: a hash of the thread,
    /// timestamp, sender and text, plus `occurrence` (0 for the first message with exactly that
    /// content in the thread, 1 for the second, ...) so identical messages stay distinct.
    pub fn derived_id(&self, occurrence: usize) -> String {
        IdHasher::new()
            .field(&self.thread_id)
            .field(self.timestamp_ms.to_le_bytes())
            .field(&self.sender_id)
            .field(&self.sender_name)
            .field(&self.text)
            .field(occurrence.to_le_bytes())
            .hex()
    }
}

/// Fills empty ids with [`Message::derived_id`], counting occurrences of identical content in
/// input order so the result does not depend on anything but the input.
pub(crate) fn fill_missing_ids(messages: &mut [Message]) {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for message in messages.iter_mut().filter(|m| m.id.is_empty()) {
        let base = message.derived_id(0);
        let occurrence = seen.entry(base.clone()).or_insert(0);
        message.id = if *occurrence == 0 {
            base
        } else {
            message.derived_id(*occurrence)
        };
        *occurrence += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> Message {
        Message {
            thread_id: "t".into(),
            sender_name: "Ann".into(),
            timestamp_ms: 1_000,
            text: text.into(),
            ..Message::default()
        }
    }

    #[test]
    fn identical_messages_get_distinct_stable_ids() {
        let mut batch = vec![message("hi"), message("hi"), message("yo")];
        fill_missing_ids(&mut batch);
        let ids: Vec<_> = batch.iter().map(|m| m.id.clone()).collect();
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[0], ids[2]);
        let mut again = vec![message("hi"), message("hi"), message("yo")];
        fill_missing_ids(&mut again);
        assert_eq!(ids, again.iter().map(|m| m.id.clone()).collect::<Vec<_>>());
    }

    #[test]
    fn existing_ids_are_kept() {
        let mut batch = vec![Message {
            id: "m1".into(),
            ..message("hi")
        }];
        fill_missing_ids(&mut batch);
        assert_eq!(batch[0].id, "m1");
    }
}
