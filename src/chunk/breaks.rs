//! Where a document may be broken, and how good each place is.

/// How natural a break is; a later variant is a better place to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// Between two words.
    Word,
    /// After `.`, `!`, `?` or `…` and whitespace, or after a CJK full stop.
    Sentence,
    /// At the start of a line.
    Line,
    /// After a blank line.
    Paragraph,
    /// Before a markdown heading (`#` to `######` at the start of a line).
    Heading,
}

/// A place to break: the byte offset where the next chunk would start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Break {
    pub pos: usize,
    pub level: Level,
}

/// Every break in `text`, in order. A break sits on the first non-whitespace character after a
/// gap, so whitespace stays at the end of the chunk before it and each chunk starts with text;
/// offset 0 is never listed.
pub(crate) fn breaks(text: &str) -> Vec<Break> {
    let mut breaks = Vec::new();
    let mut gap = false;
    let mut newlines = 0;
    // The last two non-whitespace characters, to see a sentence end behind a closing quote.
    let mut last = (None, None);
    for (pos, c) in text.char_indices() {
        if c.is_whitespace() {
            if !gap {
                gap = true;
                newlines = 0;
            }
            newlines += usize::from(c == '\n');
            continue;
        }
        if pos > 0 {
            let level = if gap && newlines > 0 && is_heading(&text[pos..]) {
                Some(Level::Heading)
            } else if gap && newlines > 1 {
                Some(Level::Paragraph)
            } else if gap && newlines == 1 {
                Some(Level::Line)
            } else if gap && ends_sentence(last) {
                Some(Level::Sentence)
            } else if gap {
                Some(Level::Word)
            } else if last.1.is_some_and(is_cjk_stop) {
                Some(Level::Sentence)
            } else {
                None
            };
            if let Some(level) = level {
                breaks.push(Break { pos, level });
            }
        }
        gap = false;
        last = (last.1, Some(c));
    }
    breaks
}

fn is_heading(line: &str) -> bool {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    (1..=6).contains(&hashes)
        && line[hashes..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace)
}

fn ends_sentence((before, last): (Option<char>, Option<char>)) -> bool {
    let stop =
        |c: Option<char>| matches!(c, Some('.' | '!' | '?' | '…')) || c.is_some_and(is_cjk_stop);
    let closing = matches!(last, Some('"' | '\'' | ')' | '”' | '’' | '»'));
    stop(last) || (closing && stop(before))
}

fn is_cjk_stop(c: char) -> bool {
    matches!(c, '。' | '！' | '？')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(text: &str) -> Vec<(&str, Level)> {
        breaks(text)
            .into_iter()
            .map(|b| (&text[b.pos..], b.level))
            .map(|(rest, level)| (rest.split_whitespace().next().unwrap_or(""), level))
            .collect()
    }

    #[test]
    fn classifies_each_kind_of_break() {
        let text = "# Title\nintro line\nsecond. Third \"quoted.\" Fourth\n\npara\n## Sub\nend。次";
        assert_eq!(
            levels(text),
            [
                ("Title", Level::Word),
                ("intro", Level::Line),
                ("line", Level::Word),
                ("second.", Level::Line),
                ("Third", Level::Sentence),
                ("\"quoted.\"", Level::Word),
                ("Fourth", Level::Sentence),
                ("para", Level::Paragraph),
                ("##", Level::Heading),
                ("Sub", Level::Word),
                ("end。次", Level::Line),
                ("次", Level::Sentence),
            ]
        );
    }

    #[test]
    fn hashtags_are_not_headings() {
        let text = "a\n#tag and\n####### seven";
        let found: Vec<Level> = breaks(text).iter().map(|b| b.level).collect();
        assert_eq!(found[0], Level::Line);
        assert!(!found.contains(&Level::Heading));
    }
}
