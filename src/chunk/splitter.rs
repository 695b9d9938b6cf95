//! [`TextSplitter`]: cuts a long document into chunks that each fit a token budget.

use std::ops::Range;

use super::breaks::{breaks, Break, Level};
use super::count::CountTokens;
use crate::error::{Error, Result};

/// A piece of a document, borrowed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChunk<'t> {
    /// The chunk's text, `&source[range]`.
    pub text: &'t str,
    /// Byte range in the source; both ends are UTF-8 character boundaries.
    pub range: Range<usize>,
    /// Tokens in `text`, by the counter the chunk was made with.
    pub tokens: usize,
}

/// Splits a document into chunks of at most `max_tokens` tokens each.
///
/// Each chunk is made as long as the budget allows, then moved back to the best break in its
/// second half: before a markdown heading, else after a blank line, a line end, a sentence end,
/// a space; a single word longer than the budget is cut between characters. Chunks follow each
/// other without a gap (whitespace between them stays at the end of the earlier one), or, with an
/// overlap, each starts at the earliest word whose rest of the previous chunk fits the overlap.
///
/// The one chunk that can exceed the budget is a single character the counter makes into more
/// than `max_tokens` tokens (an emoji under a tiny budget): it is kept rather than lost.
///
/// Cost: the counter runs about `2 log2(words per chunk)` times per chunk, on at most twice the
/// chunk's text; no whole-document tokenization is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextSplitter {
    max_tokens: usize,
    overlap: usize,
}

impl TextSplitter {
    /// A splitter for chunks of at most `max_tokens` tokens, with no overlap.
    pub fn new(max_tokens: usize) -> Self {
        Self {
            max_tokens,
            overlap: 0,
        }
    }

    /// Most tokens a chunk repeats from the end of the previous one, which keeps a sentence cut at
    /// a chunk border readable in at least one chunk. Must be below `max_tokens`. Default: 0.
    pub fn with_overlap(mut self, tokens: usize) -> Self {
        self.overlap = tokens;
        self
    }

    /// Splits `text`; an empty text gives no chunk.
    ///
    /// Fails with [`Error::InvalidOption`] when `max_tokens` is 0 or the overlap is not below
    /// it, and with the counter's error if counting fails.
    pub fn split<'t>(
        &self,
        text: &'t str,
        counter: &impl CountTokens,
    ) -> Result<Vec<TextChunk<'t>>> {
        if self.max_tokens == 0 {
            return Err(Error::InvalidOption {
                option: "max_tokens",
                reason: "must be at least 1".into(),
            });
        }
        if self.overlap >= self.max_tokens {
            return Err(Error::InvalidOption {
                option: "overlap",
                reason: format!("must be less than max_tokens ({})", self.max_tokens),
            });
        }
        let run = Run {
            text,
            breaks: breaks(text),
            counter,
            max_tokens: self.max_tokens,
        };
        let mut chunks: Vec<TextChunk<'t>> = Vec::new();
        let mut start = 0;
        while start < text.len() {
            let (mut end, mut tokens) = run.furthest_end(start)?;
            if let Some(previous) = chunks.last() {
                if end <= previous.range.end {
                    // The overlap left no room for new text: start right after the previous chunk.
                    start = previous.range.end;
                    (end, tokens) = run.furthest_end(start)?;
                }
            }
            chunks.push(TextChunk {
                text: &text[start..end],
                range: start..end,
                tokens,
            });
            if end == text.len() {
                break;
            }
            start = match self.overlap {
                0 => end,
                overlap => run.overlap_start(start, end, overlap)?,
            };
        }
        Ok(chunks)
    }
}

/// One call of [`TextSplitter::split`].
struct Run<'a, C> {
    text: &'a str,
    breaks: Vec<Break>,
    counter: &'a C,
    max_tokens: usize,
}

impl<C: CountTokens> Run<'_, C> {
    /// Tokens of `text[a..b]` if they are at most `limit`.
    fn within(&self, a: usize, b: usize, limit: usize) -> Result<Option<usize>> {
        let tokens = self.counter.count_tokens(&self.text[a..b])?;
        Ok((tokens <= limit).then_some(tokens))
    }

    /// The end and token count of the chunk that starts at `start`.
    fn furthest_end(&self, start: usize) -> Result<(usize, usize)> {
        let len = self.text.len();
        let ends = &self.breaks[self.breaks.partition_point(|b| b.pos <= start)..];
        // Candidate ends: every break after `start`, then the end of the text. Galloping from the
        // start counts at most about twice a chunk, never the whole rest of a long document.
        let end_at = |k: usize| ends.get(k).map_or(len, |b| b.pos);
        let Some((far, tokens)) = last_fitting(ends.len() + 1, |k| {
            self.within(start, end_at(k), self.max_tokens)
        })?
        else {
            return self.furthest_char_end(start, end_at(0));
        };
        if far == ends.len() {
            return Ok((len, tokens));
        }
        // The best break in the second half of what fits: highest level, then furthest.
        let half = start + (ends[far].pos - start) / 2;
        let best = (0..=far)
            .filter(|&k| ends[k].pos >= half)
            .max_by_key(|&k| (ends[k].level, k))
            .unwrap_or(far);
        if best != far && ends[best].level > Level::Word {
            // Token counts are not strictly monotone (merges across the cut), so check again.
            if let Some(tokens) = self.within(start, ends[best].pos, self.max_tokens)? {
                return Ok((ends[best].pos, tokens));
            }
        }
        Ok((ends[far].pos, tokens))
    }

    /// The furthest character boundary up to `limit` where a chunk from `start` still fits, for
    /// a word longer than the budget; one character if not even that fits.
    ///
    /// Boundaries are listed only as far as the search reaches, so a megabyte-long word costs
    /// each chunk its own length, not the rest of the word's.
    fn furthest_char_end(&self, start: usize, limit: usize) -> Result<(usize, usize)> {
        let mut ends = self.text[start..limit]
            .char_indices()
            .skip(1)
            .map(|(i, _)| start + i)
            .chain(std::iter::once(limit));
        let mut bounds: Vec<usize> = Vec::new();
        let found = last_fitting(limit - start, |k| {
            while bounds.len() <= k {
                match ends.next() {
                    Some(end) => bounds.push(end),
                    None => return Ok(None), // past `limit`: nothing there fits
                }
            }
            self.within(start, bounds[k], self.max_tokens)
        })?;
        match found {
            Some((k, tokens)) => Ok((bounds[k], tokens)),
            None => {
                let end = bounds.first().copied().unwrap_or(limit);
                Ok((end, self.counter.count_tokens(&self.text[start..end])?))
            }
        }
    }

    /// Where the chunk after `start..end` starts: the earliest break after `start` whose text up
    /// to `end` fits in `overlap` tokens, or `end` if none does.
    fn overlap_start(&self, start: usize, end: usize, overlap: usize) -> Result<usize> {
        let inside = &self.breaks[self.breaks.partition_point(|b| b.pos <= start)
            ..self.breaks.partition_point(|b| b.pos < end)];
        let from_end = |j: usize| inside[inside.len() - 1 - j].pos;
        let found = last_fitting(inside.len(), |j| self.within(from_end(j), end, overlap))?;
        Ok(found.map_or(end, |(j, _)| from_end(j)))
    }
}

/// The largest `k < n` for which `probe(k)` fits, with its token count, assuming the probes that
/// fit form a prefix of `0..n`. Gallops (1, 2, 4, ...) and then bisects, so the number of probes
/// grows with the log of the answer, not of `n`.
fn last_fitting(
    n: usize,
    mut probe: impl FnMut(usize) -> Result<Option<usize>>,
) -> Result<Option<(usize, usize)>> {
    if n == 0 {
        return Ok(None);
    }
    let Some(first) = probe(0)? else {
        return Ok(None);
    };
    let (mut good, mut tokens, mut bad) = (0, first, n);
    let mut step = 1;
    while good + step < bad {
        match probe(good + step)? {
            Some(t) => {
                good += step;
                tokens = t;
                step *= 2;
            }
            None => bad = good + step,
        }
    }
    while bad - good > 1 {
        let mid = good + (bad - good) / 2;
        match probe(mid)? {
            Some(t) => (good, tokens) = (mid, t),
            None => bad = mid,
        }
    }
    Ok(Some((good, tokens)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_fitting_finds_the_boundary() {
        for n in 0..40 {
            for answer in 0..=n {
                let found = last_fitting(n, |k| Ok((k < answer).then_some(k * 10))).unwrap();
                let want = answer.checked_sub(1).map(|k| (k, k * 10));
                assert_eq!(found, want, "n={n} answer={answer}");
            }
        }
    }
}
