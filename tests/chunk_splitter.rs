//! The token-aware document splitter and long texts embedded as chunks (`LongText::Chunks`).

mod common;

use proptest::prelude::*;
use rembed::chunk::{CountTokens, TextChunk, TextSplitter, TokenCounter};
use rembed::{Embedder, Options};
use tokenizers::Tokenizer;

/// One token per whitespace-separated word: makes break choices easy to predict.
fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

fn tokenizer() -> Tokenizer {
    Tokenizer::from_file(common::fixture("bert-mean/tokenizer.json")).unwrap()
}

fn starts(chunks: &[TextChunk<'_>]) -> Vec<String> {
    chunks
        .iter()
        .map(|c| {
            c.text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn breaks_before_a_heading_rather_than_mid_paragraph() {
    let text = "# One\nalpha beta gamma.\n\nDelta epsilon.\n# Two\nzeta eta theta iota kappa";
    // 12 words; 9 fit. The furthest fitting break is inside "Two"'s section, but the heading is
    // in the second half of what fits and beats every other break.
    let chunks = TextSplitter::new(9).split(text, &words).unwrap();
    assert_eq!(starts(&chunks), ["# One", "# Two"]);
    assert_eq!(chunks[0].tokens, 7);
}

#[test]
fn prefers_paragraph_then_sentence_then_word() {
    let paragraph = "a b c d. e f\n\ng h i j";
    assert_eq!(
        starts(&TextSplitter::new(8).split(paragraph, &words).unwrap()),
        ["a b", "g h"]
    );
    let sentence = "a b c d. e f g h i j";
    assert_eq!(
        starts(&TextSplitter::new(8).split(sentence, &words).unwrap()),
        ["a b", "e f"]
    );
    let plain = "a b c d e f g h i j";
    assert_eq!(
        starts(&TextSplitter::new(8).split(plain, &words).unwrap()),
        ["a b", "i j"]
    );
}

#[test]
fn a_break_in_the_first_half_is_not_worth_a_tiny_chunk() {
    // The paragraph break after 2 words is before half of the 8 that fit, so the split is later.
    let text = "a b\n\nc d e f g h i j k l";
    let chunks = TextSplitter::new(8).split(text, &words).unwrap();
    assert_eq!(chunks[0].tokens, 8);
}

#[test]
fn overlap_repeats_the_end_of_the_previous_chunk() {
    let text = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9";
    let chunks = TextSplitter::new(4)
        .with_overlap(2)
        .split(text, &words)
        .unwrap();
    assert_eq!(starts(&chunks), ["w0 w1", "w2 w3", "w4 w5", "w6 w7"]);
    assert_eq!(chunks.last().unwrap().range.end, text.len());
}

#[test]
fn a_word_longer_than_the_budget_is_cut_between_characters() {
    let chars = |t: &str| t.chars().count();
    let text = "żółw".repeat(10);
    let chunks = TextSplitter::new(7).split(&text, &chars).unwrap();
    assert!(chunks
        .iter()
        .all(|c| c.tokens <= 7 && c.text.chars().count() <= 7));
    assert_eq!(chunks.iter().map(|c| c.text).collect::<String>(), text);
}

#[test]
fn empty_text_has_no_chunk_and_bad_settings_are_refused() {
    assert!(TextSplitter::new(5).split("", &words).unwrap().is_empty());
    let refused = |s: TextSplitter| match s.split("a b", &words) {
        Err(rembed::Error::InvalidOption { option, .. }) => option,
        other => panic!("expected InvalidOption, got {other:?}"),
    };
    assert_eq!(refused(TextSplitter::new(0)), "max_tokens");
    assert_eq!(refused(TextSplitter::new(4).with_overlap(4)), "overlap");
}

#[test]
fn truncating_tokenizers_refuse_long_texts_and_token_counter_counts_them() {
    let plain = tokenizer();
    let embedder = Embedder::load(
        common::fixture("bert-mean").to_str().unwrap(),
        Options::default().with_device(rembed::Device::Cpu),
    )
    .unwrap();
    let truncating = embedder.tokenizer();
    assert!(truncating.get_truncation().is_some());
    let text = "the quick brown fox jumps over the lazy dog ".repeat(12);
    let want = plain.encode(text.as_str(), false).unwrap().get_ids().len();
    assert!(want > 24 * 3, "longer than several truncated parts");
    assert_eq!(plain.count_tokens(&text).unwrap(), want);
    assert!(matches!(
        truncating.count_tokens(&text),
        Err(rembed::Error::InvalidOption {
            option: "truncation",
            ..
        })
    ));
    assert_eq!(
        truncating.count_tokens("hello world").unwrap(),
        2,
        "short texts are exact"
    );
    assert_eq!(
        TokenCounter::new(truncating).count_tokens(&text).unwrap(),
        want
    );
    let with_specials = plain.encode("hello world", true).unwrap().get_ids().len();
    assert_eq!(
        with_specials, 4,
        "[CLS] hello world [SEP], of which 2 are counted"
    );
}

fn document() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => "[a-z]{1,9}",
        2 => prop::sample::select(vec![
            " ", " ", "\n", "\n\n", ". ", "! ", "\n# Heading\n", "\n## Sub\n", "quick brown fox",
            "retrieval", "😂", "Zażółć", "東京。", "\t",
        ])
        .prop_map(String::from),
        1 => any::<String>(),
    ];
    prop::collection::vec(piece, 0..120).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn chunks_fit_cover_the_text_and_sit_on_char_boundaries(
        text in document(),
        max_tokens in 1usize..30,
        overlap in 0usize..30,
    ) {
        let overlap = overlap % max_tokens;
        let tokenizer = tokenizer();
        let chunks = TextSplitter::new(max_tokens).with_overlap(overlap).split(&text, &tokenizer).unwrap();
        prop_assert_eq!(chunks.is_empty(), text.is_empty());
        if let (Some(first), Some(last)) = (chunks.first(), chunks.last()) {
            prop_assert_eq!(first.range.start, 0);
            prop_assert_eq!(last.range.end, text.len());
        }
        for chunk in &chunks {
            prop_assert!(text.is_char_boundary(chunk.range.start) && text.is_char_boundary(chunk.range.end));
            prop_assert_eq!(chunk.text, &text[chunk.range.clone()]);
            let tokens = tokenizer.count_tokens(chunk.text).unwrap();
            prop_assert_eq!(tokens, chunk.tokens);
            prop_assert!(tokens <= max_tokens || chunk.text.chars().count() == 1, "{} tokens: {:?}", tokens, chunk.text);
        }
        for pair in chunks.windows(2) {
            let (a, b) = (&pair[0].range, &pair[1].range);
            prop_assert!(b.start > a.start && b.end > a.end, "progress");
            prop_assert!(b.start <= a.end, "no gap");
            if overlap == 0 {
                prop_assert_eq!(b.start, a.end);
            } else {
                prop_assert!(tokenizer.count_tokens(&text[b.start..a.end]).unwrap() <= overlap);
            }
        }
    }
}

/// One text embedded as chunks: its chunks and its (mean) row.
fn embed_long(
    embedder: &Embedder,
    text: &str,
    overlap_tokens: usize,
) -> rembed::Result<(rembed::Chunks, ndarray::Array1<f32>)> {
    let request =
        rembed::Request::default().with_long_text(rembed::LongText::Chunks { overlap_tokens });
    let mut out = embedder.embed_with(&[text], &request)?;
    let chunks = out.chunks.take().expect("chunks asked for").remove(0);
    Ok((chunks, out.dense.row(0).to_owned()))
}

fn embedder() -> Embedder {
    Embedder::load(
        common::fixture("bert-mean").to_str().unwrap(),
        Options::default().with_device(rembed::Device::Cpu),
    )
    .unwrap()
}

#[test]
fn embed_long_embeds_every_part_without_truncation() {
    let embedder = embedder();
    let text = "# Report\nThe quick brown fox jumps over the lazy dog. Retrieval of chat logs.\n\n\
                ## Data\nVectors and embedding search over paragraphs. Programming in Rust is safe.\n\n\
                Tokyo is the capital of Japan. Paris is the capital of France. Zurich reviews."
        .repeat(2);
    let (long, mean) = embed_long(&embedder, &text, 0).unwrap();
    assert!(long.ranges.len() >= 3, "{} chunks", long.ranges.len());
    assert_eq!(long.vectors.nrows(), long.ranges.len());
    assert_eq!(long.ranges[0].start, 0);
    assert_eq!(long.ranges.last().unwrap().end, text.len());
    for (i, range) in long.ranges.iter().enumerate() {
        let chunk = &text[range.clone()];
        let encoding = embedder.tokenizer().encode(chunk, true).unwrap();
        assert!(
            encoding.get_overflowing().is_empty(),
            "chunk {i} was truncated"
        );
        let alone = embedder.embed(&[chunk]).unwrap();
        let cos = common::cosine(alone.row(0), long.vectors.row(i));
        assert!(cos > 0.9999, "chunk {i}: cosine {cos}");
    }
    assert!((mean.dot(&mean).sqrt() - 1.0).abs() < 1e-5, "re-normalized");
    let raw = long.vectors.mean_axis(ndarray::Axis(0)).unwrap();
    assert!(common::cosine(mean.view(), raw.view()) > 0.9999);
}

#[test]
fn embed_long_of_a_short_text_is_embed() {
    let embedder = embedder();
    let (long, mean) = embed_long(&embedder, "hello world", 4).unwrap();
    assert_eq!(long.ranges.len(), 1);
    assert_eq!(long.ranges[0], 0..11);
    let direct = embedder.embed(&["hello world"]).unwrap();
    assert!(common::cosine(direct.row(0), mean.view()) > 0.9999);
    let (empty, _) = embed_long(&embedder, "", 0).unwrap();
    assert_eq!((empty.ranges.len(), empty.vectors.nrows()), (1, 1));
    assert_eq!(empty.ranges[0], 0..0);
}

#[test]
fn embed_long_overlap_shares_text_between_chunks() {
    let embedder = embedder();
    let text = "the quick brown fox jumps over the lazy dog ".repeat(8);
    let (long, _) = embed_long(&embedder, &text, 6).unwrap();
    assert!(
        long.ranges.windows(2).all(|w| w[1].start < w[0].end),
        "{:?}",
        long.ranges
    );
    assert!(matches!(
        embed_long(&embedder, &text, 24),
        Err(rembed::Error::InvalidOption {
            option: "overlap",
            ..
        })
    ));
}
