//! Sliding windows over the turns of a session, and the [`Chunk`]s they become.

use serde::{Deserialize, Serialize};

use super::coalesce::Turn;
use super::hash::IdHasher;

/// One embeddable piece of a conversation: consecutive turns of one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Hash of the thread, text and message ids (and, for a piece of a split message, which
    /// piece): the same on every run for the same input, and unchanged for earlier chunks when
    /// later messages are appended to a thread.
    pub chunk_id: String,
    /// The conversation's id.
    pub thread_id: String,
    /// The conversation's most recent non-empty name.
    pub thread_name: String,
    /// Position of the session within its thread, from 0.
    pub session_idx: usize,
    /// Position of the chunk within its session, from 0.
    pub chunk_idx: usize,
    /// Senders who wrote in this chunk, in order of first appearance.
    pub participant_ids: Vec<String>,
    /// Their display names, in the same order.
    pub participant_names: Vec<String>,
    /// One line per turn, `[Sender Name]: text`; the lines of a merged turn follow its first.
    pub text: String,
    /// The messages in the chunk, in time order, each once.
    pub message_ids: Vec<String>,
    /// Timestamp of the first message, in ms since the Unix epoch.
    pub start_timestamp_ms: i64,
    /// Timestamp of the last message, in ms since the Unix epoch.
    pub end_timestamp_ms: i64,
    /// `message_ids.len()`.
    pub message_count: usize,
}

/// One line of chunk text: a turn, or a piece of a turn too long for one chunk.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// Index of the turn in its session.
    pub turn: usize,
    /// Which piece of the turn this is (0 for an unsplit turn).
    pub piece: usize,
    pub text: String,
    pub chars: usize,
}

/// Window sizes, in lines and characters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Windowing {
    pub window: usize,
    pub overlap: usize,
    pub max_chars: usize,
}

/// Writes each turn as `[Sender Name]: text`, splitting one that exceeds `max_chars` into several
/// lines, each with the label. Names are shortened to keep the label within half of `max_chars`,
/// so every line has room for text. Needs `max_chars >= 16`.
pub(crate) fn lines(turns: &[Turn<'_>], max_chars: usize) -> Vec<Line> {
    let mut lines = Vec::with_capacity(turns.len());
    for (index, turn) in turns.iter().enumerate() {
        let label = label(turn.sender_name, max_chars / 2);
        let label_chars = label.chars().count();
        if label_chars + turn.chars <= max_chars {
            lines.push(Line {
                turn: index,
                piece: 0,
                text: format!("{label}{}", turn.text),
                chars: label_chars + turn.chars,
            });
            continue;
        }
        for (piece_index, piece) in split_text(&turn.text, max_chars - label_chars)
            .into_iter()
            .enumerate()
        {
            lines.push(Line {
                turn: index,
                piece: piece_index,
                text: format!("{label}{piece}"),
                chars: label_chars + piece.chars().count(),
            });
        }
    }
    lines
}

/// `[name]: `, with the name cut (and `…` appended) to keep it within `max_chars` characters.
fn label(name: &str, max_chars: usize) -> String {
    let room = max_chars.saturating_sub(4).max(1);
    if name.chars().count() <= room {
        return format!("[{name}]: ");
    }
    let cut: String = name.chars().take(room - 1).collect();
    format!("[{cut}…]: ")
}

/// Cuts `text` into pieces of at most `capacity` characters (at least 1) that concatenate back to
/// `text`. A piece ends after the last whitespace in its second half if there is one, else at
/// exactly `capacity` characters; cuts fall between characters, never inside a UTF-8 sequence.
pub(crate) fn split_text(text: &str, capacity: usize) -> Vec<&str> {
    let capacity = capacity.max(1);
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some((hard, _)) = rest.char_indices().nth(capacity) {
        let half = rest[..hard]
            .char_indices()
            .nth(capacity / 2)
            .map_or(0, |(i, _)| i);
        let cut = rest[..hard]
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .filter(|&(i, _)| i >= half)
            .map_or(hard, |(i, c)| i + c.len_utf8());
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// The windows over `lines`, as `start..end` line ranges.
///
/// A window takes up to `window` lines, ending early rather than exceed `max_chars` (lines joined
/// by newlines). The next window starts `overlap` lines before the end of a full window; after a
/// window that the character limit ended early, the overlap shrinks in proportion
/// (`overlap * taken / window`) so that huge messages are not repeated in chunk after chunk. The
/// overlap also shrinks when keeping it would leave no room for a new line, so every window holds
/// at least one line its predecessor did not. Every line must fit in `max_chars` (see [`lines`]).
pub(crate) fn windows(lines: &[Line], sizes: Windowing) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < lines.len() {
        let mut end = start;
        let mut chars = 0;
        while end < lines.len() && end - start < sizes.window {
            let add = lines[end].chars + usize::from(end > start);
            if end > start && chars + add > sizes.max_chars {
                break;
            }
            chars += add;
            end += 1;
        }
        ranges.push(start..end);
        if end == lines.len() {
            break;
        }
        let taken = end - start;
        let overlap = if taken == sizes.window {
            sizes.overlap
        } else {
            sizes.overlap * taken / sizes.window
        };
        let mut next = end - overlap.min(taken - 1);
        // Room for line `end` after the overlap: chars of lines next..=end plus separators.
        let mut tail: usize = lines[next..=end].iter().map(|l| l.chars + 1).sum::<usize>() - 1;
        while next < end && tail > sizes.max_chars {
            tail -= lines[next].chars + 1;
            next += 1;
        }
        start = next;
    }
    ranges
}

/// Builds the chunk for the lines `range` of a session.
pub(crate) fn chunk(
    turns: &[Turn<'_>],
    lines: &[Line],
    range: std::ops::Range<usize>,
    thread: (&str, &str),
    session_idx: usize,
    chunk_idx: usize,
) -> Chunk {
    let lines = &lines[range];
    let mut text = String::with_capacity(lines.iter().map(|l| l.text.len() + 1).sum());
    let mut message_ids: Vec<String> = Vec::new();
    let mut participants: Vec<(&str, &str)> = Vec::new();
    let mut previous_turn = None;
    for line in lines {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&line.text);
        if previous_turn == Some(line.turn) {
            continue; // another piece of a turn already counted
        }
        previous_turn = Some(line.turn);
        let turn = &turns[line.turn];
        message_ids.extend(turn.message_ids.iter().map(|id| id.to_string()));
        if !participants.iter().any(|&(id, _)| id == turn.sender_id) {
            participants.push((turn.sender_id, turn.sender_name));
        }
    }
    // Pieces of one long message can repeat each other's text; the first piece's position keeps
    // their chunks' ids apart.
    let first = &turns[lines[0].turn];
    let mut hasher = IdHasher::new();
    hasher
        .field(thread.0)
        .field(&text)
        .field(lines[0].piece.to_le_bytes());
    for id in &message_ids {
        hasher.field(id);
    }
    let last = &turns[lines[lines.len() - 1].turn];
    Chunk {
        chunk_id: hasher.hex(),
        thread_id: thread.0.to_string(),
        thread_name: thread.1.to_string(),
        session_idx,
        chunk_idx,
        participant_ids: participants.iter().map(|p| p.0.to_string()).collect(),
        participant_names: participants.iter().map(|p| p.1.to_string()).collect(),
        text,
        message_count: message_ids.len(),
        message_ids,
        start_timestamp_ms: first.start_ms,
        end_timestamp_ms: last.end_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_text_prefers_whitespace_and_keeps_every_byte() {
        let text = "alpha beta gamma delta";
        let pieces = split_text(text, 12);
        assert_eq!(pieces, ["alpha beta ", "gamma delta"]);
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn split_text_cuts_between_characters_without_whitespace() {
        let text = "żółćżółćżó";
        let pieces = split_text(text, 4);
        assert_eq!(pieces, ["żółć", "żółć", "żó"]);
    }

    #[test]
    fn long_names_are_shortened() {
        assert_eq!(label("Ann", 16), "[Ann]: ");
        assert_eq!(label("Bartholomew", 10), "[Barth…]: ");
        assert!(label("Bartholomew", 10).chars().count() <= 10);
    }
}
