//! Sessions and turns: cutting a thread where the conversation pauses, and merging bursts of
//! short messages from one sender into one turn.

use super::message::Message;

/// Consecutive messages from one sender, merged.
#[derive(Debug, Clone)]
pub(crate) struct Turn<'m> {
    pub sender_id: &'m str,
    pub sender_name: &'m str,
    /// The messages' trimmed texts, one per line.
    pub text: String,
    /// `text.chars().count()`, kept to avoid recounting.
    pub chars: usize,
    pub message_ids: Vec<&'m str>,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Splits time-ordered messages wherever two consecutive ones are more than `gap_ms` apart.
pub(crate) fn sessions<'a, 'm>(
    messages: &'a [&'m Message],
    gap_ms: i64,
) -> impl Iterator<Item = &'a [&'m Message]> {
    messages.chunk_by(move |a, b| b.timestamp_ms.saturating_sub(a.timestamp_ms) <= gap_ms)
}

/// Merges each message into the turn before it when both come from the same sender, it follows
/// that turn's last message by at most `gap_ms`, and the merged text stays within `max_chars`
/// characters. A message longer than `max_chars` becomes a turn of its own; `max_chars == 0`
/// turns coalescing off.
///
/// The gap is measured from the turn's last message, not its first, so a steady stream of
/// messages a minute apart stays one turn until the character cap ends it.
pub(crate) fn coalesce<'m>(
    session: &[&'m Message],
    gap_ms: i64,
    max_chars: usize,
) -> Vec<Turn<'m>> {
    let mut turns: Vec<Turn<'m>> = Vec::new();
    for &message in session {
        let text = message.text.trim();
        let chars = text.chars().count();
        if let Some(turn) = turns.last_mut() {
            let joins = turn.sender_id == sender_key(message)
                && message.timestamp_ms.saturating_sub(turn.end_ms) <= gap_ms
                && turn.chars + 1 + chars <= max_chars;
            if joins {
                turn.text.push('\n');
                turn.text.push_str(text);
                turn.chars += 1 + chars;
                turn.message_ids.push(&message.id);
                turn.end_ms = message.timestamp_ms;
                continue;
            }
        }
        turns.push(Turn {
            sender_id: sender_key(message),
            sender_name: if message.sender_name.is_empty() {
                sender_key(message)
            } else {
                &message.sender_name
            },
            text: text.to_string(),
            chars,
            message_ids: vec![&message.id],
            start_ms: message.timestamp_ms,
            end_ms: message.timestamp_ms,
        });
    }
    turns
}

/// Who sent a message: the sender id, or the name where a source has no ids.
fn sender_key(message: &Message) -> &str {
    if message.sender_id.is_empty() {
        &message.sender_name
    } else {
        &message.sender_id
    }
}
