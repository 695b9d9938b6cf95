//! Which messages are noise: system events, empty messages, low-signal texts.

use std::fmt;
use std::sync::OnceLock;

use super::message::Message;

/// Why a message was dropped before chunking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// No text and no flag that says why.
    Empty,
    /// The sender unsent the message ("You unsent a message").
    Unsent,
    /// A call or video chat record ("You missed a call from Ann").
    Call,
    /// Only photos, videos, stickers or files, or the text the export writes for them
    /// ("You sent a photo.").
    AttachmentOnly,
    /// A reaction written as a message ("Ann reacted 😂 to your message").
    Reaction,
    /// A membership or settings event ("Ann named the group Trip").
    System,
}

impl DropReason {
    /// Every reason, in a fixed order for reports.
    pub const ALL: [DropReason; 6] = [
        Self::Empty,
        Self::Unsent,
        Self::Call,
        Self::AttachmentOnly,
        Self::Reaction,
        Self::System,
    ];

    /// A short snake_case name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Unsent => "unsent",
            Self::Call => "call",
            Self::AttachmentOnly => "attachment_only",
            Self::Reaction => "reaction",
            Self::System => "system",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text patterns that mark a message as a system message, in English as Messenger writes
/// them. A pattern matches the whole trimmed text, ignoring one trailing `.`; each `*` stands for
/// 1 to 64 characters on one line (a name, an emoji, a group title), which keeps a real message
/// that merely ends in "to your message" from matching.
pub const DEFAULT_PATTERNS: &[(&str, DropReason)] = &[
    ("You sent a photo", DropReason::AttachmentOnly),
    ("* sent a photo", DropReason::AttachmentOnly),
    ("You sent * photos", DropReason::AttachmentOnly),
    ("* sent * photos", DropReason::AttachmentOnly),
    ("You sent a video", DropReason::AttachmentOnly),
    ("* sent a video", DropReason::AttachmentOnly),
    ("You sent a sticker", DropReason::AttachmentOnly),
    ("* sent a sticker", DropReason::AttachmentOnly),
    ("You sent a GIF", DropReason::AttachmentOnly),
    ("* sent a GIF", DropReason::AttachmentOnly),
    ("You sent a GIF from *", DropReason::AttachmentOnly),
    ("* sent a GIF from *", DropReason::AttachmentOnly),
    ("You sent an attachment", DropReason::AttachmentOnly),
    ("* sent an attachment", DropReason::AttachmentOnly),
    ("You sent a voice message", DropReason::AttachmentOnly),
    ("* sent a voice message", DropReason::AttachmentOnly),
    ("You sent a location", DropReason::AttachmentOnly),
    ("* sent a location", DropReason::AttachmentOnly),
    ("Reacted * to your message", DropReason::Reaction),
    ("* reacted * to your message", DropReason::Reaction),
    ("You reacted * to *'s message", DropReason::Reaction),
    ("* reacted * to *'s message", DropReason::Reaction),
    ("You missed a call from *", DropReason::Call),
    ("You missed a video chat with *", DropReason::Call),
    ("* missed your call", DropReason::Call),
    ("* missed your video chat", DropReason::Call),
    ("You called *", DropReason::Call),
    ("* called you", DropReason::Call),
    ("The call ended", DropReason::Call),
    ("The video chat ended", DropReason::Call),
    ("* started a call", DropReason::Call),
    ("* started a video chat", DropReason::Call),
    ("* joined the call", DropReason::Call),
    ("* joined the video chat", DropReason::Call),
    ("You unsent a message", DropReason::Unsent),
    ("* unsent a message", DropReason::Unsent),
    ("This message was unsent", DropReason::Unsent),
    ("* named the group *", DropReason::System),
    ("* changed the group photo", DropReason::System),
    ("* added * to the group", DropReason::System),
    ("* removed * from the group", DropReason::System),
    ("* left the group", DropReason::System),
    ("* created the group", DropReason::System),
    ("* set the nickname for * to *", DropReason::System),
    ("* set your nickname to *", DropReason::System),
    ("* set * own nickname to *", DropReason::System),
    ("* cleared the nickname for *", DropReason::System),
    ("* changed the chat theme", DropReason::System),
    ("* changed the theme to *", DropReason::System),
    ("* set the emoji to *", DropReason::System),
    ("* set the quick reaction to *", DropReason::System),
    ("* pinned a message", DropReason::System),
    ("You are now connected on Messenger", DropReason::System),
    ("Say hi to your new Facebook friend, *", DropReason::System),
    ("* waved at you!", DropReason::System),
    ("You waved at *!", DropReason::System),
];

/// Longest stretch of text one `*` stands for, in characters.
const WILDCARD_MAX_CHARS: usize = 64;

/// Decides which messages are dropped before chunking, and why.
///
/// The rules, in the order they are checked:
/// 1. The source's field flags ([`super::Flags`]): unsent → [`DropReason::Unsent`], call →
///    [`DropReason::Call`], system event → [`DropReason::System`], attachment with no text →
///    [`DropReason::AttachmentOnly`].
/// 2. Text that is empty or only whitespace → [`DropReason::Empty`].
/// 3. The text patterns, in order ([`DEFAULT_PATTERNS`] unless replaced or extended).
#[derive(Debug, Clone)]
pub struct Filter {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// The literal before the first `*` (the whole pattern when it has none).
    first: String,
    /// Everything after the first `*`; `None` for a pattern without one.
    tail: Option<Tail>,
    reason: DropReason,
}

#[derive(Debug, Clone)]
struct Tail {
    /// The literals between two `*`s.
    middle: Vec<String>,
    /// The literal after the last `*`.
    last: String,
    /// Longest text that can match: the literals plus 64 four-byte characters per `*`.
    max_len: usize,
}

impl Default for Filter {
    /// Field flags, empty text and [`DEFAULT_PATTERNS`].
    fn default() -> Self {
        DEFAULT_PATTERNS
            .iter()
            .fold(Self::without_patterns(), |f, &(p, r)| f.with_pattern(p, r))
    }
}

impl Filter {
    /// Field flags and empty text only, no text pattern: for sources that flag every system
    /// message, or whose language the default patterns do not cover.
    pub fn without_patterns() -> Self {
        Self {
            patterns: Vec::new(),
        }
    }

    /// Adds a text pattern (same syntax as [`DEFAULT_PATTERNS`]), checked after the existing ones.
    pub fn with_pattern(mut self, pattern: &str, reason: DropReason) -> Self {
        let pattern = pattern.trim();
        let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
        let mut literals: Vec<&str> = pattern.split('*').collect();
        let first = literals.remove(0).to_string();
        let tail = literals.pop().map(|last| Tail {
            max_len: pattern.len() + (literals.len() + 1) * WILDCARD_MAX_CHARS * 4,
            middle: literals.iter().map(|l| l.to_string()).collect(),
            last: last.to_string(),
        });
        self.patterns.push(Pattern {
            first,
            tail,
            reason,
        });
        self
    }

    /// Why `message` should be dropped, or `None` to keep it.
    pub fn reason(&self, message: &Message) -> Option<DropReason> {
        let flags = message.flags;
        let blank = message.text.trim().is_empty();
        if flags.unsent {
            Some(DropReason::Unsent)
        } else if flags.call {
            Some(DropReason::Call)
        } else if flags.system {
            Some(DropReason::System)
        } else if flags.attachment && blank {
            Some(DropReason::AttachmentOnly)
        } else if blank {
            Some(DropReason::Empty)
        } else {
            self.text_reason(&message.text)
        }
    }

    /// Which text pattern `text` matches, if any.
    pub fn text_reason(&self, text: &str) -> Option<DropReason> {
        let text = text.trim();
        let text = text.strip_suffix('.').unwrap_or(text);
        self.patterns
            .iter()
            .find(|p| p.matches(text))
            .map(|p| p.reason)
    }
}

impl Pattern {
    fn matches(&self, text: &str) -> bool {
        let Some(tail) = &self.tail else {
            return text == self.first;
        };
        let (first, last) = (self.first.as_bytes(), tail.last.as_bytes());
        let bytes = text.as_bytes();
        // Length and end-byte checks reject nearly every text before any memcmp or search, which
        // matters at 50-odd patterns per message. Empty literals are never compared: a memcmp of
        // an empty `String`'s dangling pointer costs a fault-suppression assist (~200 ns) on
        // AVX-512 machines.
        let starts =
            first.is_empty() || (bytes.first() == first.first() && bytes.starts_with(first));
        let ends = last.is_empty() || (bytes.last() == last.last() && bytes.ends_with(last));
        if bytes.len() > tail.max_len || bytes.len() < first.len() + last.len() || !starts || !ends
        {
            return false;
        }
        wildcards_match(&tail.middle, &text[first.len()..text.len() - last.len()])
    }
}

/// Whether `text` is `* middle[0] * middle[1] ... *`, each `*` a valid wildcard span.
fn wildcards_match(middle: &[String], text: &str) -> bool {
    let Some((literal, rest)) = middle.split_first() else {
        return is_wildcard(text);
    };
    // `contains` has a SIMD path for short needles that `find` lacks; nearly every text fails it.
    if !text.contains(literal.as_str()) {
        return false;
    }
    // Every occurrence of the literal, overlapping ones too, until the span before it is too
    // long or crosses a line to be a wildcard.
    let mut from = 0;
    while let Some(found) = text[from..].find(literal.as_str()) {
        let at = from + found;
        let span = &text[..at];
        if !span.is_empty() && !is_wildcard(span) {
            return false;
        }
        if !span.is_empty() && wildcards_match(rest, &text[at + literal.len()..]) {
            return true;
        }
        from = at + text[at..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

fn is_wildcard(span: &str) -> bool {
    !span.is_empty() && !span.contains('\n') && span.chars().count() <= WILDCARD_MAX_CHARS
}

/// Whether a message is too thin to be worth embedding on its own: fewer than 3 characters, only
/// emoji (one or several), a bare URL, or a system message by [`DEFAULT_PATTERNS`]. For people who
/// embed per message; [`super::ChatChunker`] keeps such messages, since in a conversation chunk
/// "yes" after a question carries meaning.
pub fn is_low_signal(text: &str) -> bool {
    static DEFAULT: OnceLock<Filter> = OnceLock::new();
    let text = text.trim();
    text.chars().count() < 3
        || is_emoji_only(text)
        || is_bare_url(text)
        || DEFAULT
            .get_or_init(Filter::default)
            .text_reason(text)
            .is_some()
}

fn is_bare_url(text: &str) -> bool {
    !text.contains(char::is_whitespace)
        && ["http://", "https://", "www."]
            .iter()
            .any(|scheme| text.len() > scheme.len() && text.starts_with(scheme))
}

fn is_emoji_only(text: &str) -> bool {
    let mut pictographs = 0;
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        if is_pictograph(c) {
            pictographs += 1;
        } else if !is_emoji_modifier(c) {
            return false;
        }
    }
    pictographs > 0
}

/// Code point blocks that hold (nearly) only emoji and pictographic symbols.
fn is_pictograph(c: char) -> bool {
    matches!(u32::from(c),
        0x1F000..=0x1FAFF // emoticons, pictographs, transport, flags, skin tones, supplemental
        | 0x2600..=0x27BF // miscellaneous symbols and dingbats (☀, ❤, ✅)
        | 0x2300..=0x23FF // technical (⌚, ⏰)
        | 0x2B00..=0x2BFF // arrows and stars (⭐, ⬆)
        | 0x3030 | 0x303D | 0x3297 | 0x3299 | 0x00A9 | 0x00AE | 0x2122)
}

/// Characters that only modify or join emoji: zero-width joiner, variation selectors, keycap,
/// tag characters of subdivision flags.
fn is_emoji_modifier(c: char) -> bool {
    matches!(
        u32::from(c),
        0x200D | 0xFE0E | 0xFE0F | 0x20E3 | 0xE0020..=0xE007F
    )
}
