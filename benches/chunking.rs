//! Chat chunking throughput (messages/s) on a generated archive of 1.2 M messages, and document
//! splitting throughput (bytes/s) with a word counter.
//!
//! ```sh
//! cargo bench --bench chunking -- --quick --noplot
//! ```
//!
//! The archive imitates a real Messenger dump: 600 threads of very different sizes, bursts of
//! messages seconds apart from one sender, pauses of minutes and of days, about one message in
//! six "ok"/"haha"/emoji, one in twenty a system message or photo, a few long ones. It is built
//! once, outside the measured closure.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rembed::chunk::{ChatChunker, Flags, Message, TextSplitter};

const MESSAGES: usize = 1_200_000;
const THREADS: usize = 600;

/// splitmix64: a fixed, dependency-free generator so every run benches the same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "the",
    "a",
    "I",
    "you",
    "we",
    "it",
    "is",
    "was",
    "are",
    "to",
    "of",
    "and",
    "in",
    "that",
    "for",
    "on",
    "with",
    "this",
    "but",
    "not",
    "have",
    "be",
    "do",
    "at",
    "so",
    "just",
    "like",
    "what",
    "when",
    "tomorrow",
    "tonight",
    "later",
    "dinner",
    "train",
    "station",
    "weekend",
    "movie",
    "work",
    "meeting",
    "project",
    "flat",
    "rent",
    "trip",
    "tickets",
    "beach",
    "mountains",
    "coffee",
    "lunch",
    "party",
    "birthday",
    "gift",
    "mum",
    "dad",
    "sister",
    "brother",
    "cat",
    "dog",
    "doctor",
    "exam",
    "deadline",
    "presentation",
    "laptop",
    "phone",
    "photos",
    "music",
    "concert",
    "football",
    "match",
    "score",
    "weather",
    "rain",
    "snow",
    "sun",
    "hot",
    "cold",
    "great",
    "awful",
    "funny",
    "weird",
    "really",
    "maybe",
    "probably",
    "definitely",
    "sorry",
    "thanks",
    "please",
    "love",
    "miss",
    "need",
    "want",
    "think",
    "know",
    "remember",
    "forgot",
    "bring",
    "call",
    "send",
    "meet",
    "leave",
    "arrive",
    "wait",
    "ready",
    "late",
    "early",
    "jutro",
    "dzięki",
    "świetnie",
    "żółw",
    "café",
    "naïve",
    "😂",
    "❤️",
    "🎉",
];
const SHORT: &[&str] = &[
    "ok", "haha", "lol", "yes", "no", "k", "😂", "👍", "❤️", "sure", "hahaha", "omg", "ok!",
];
const SYSTEM: &[&str] = &[
    "You sent a photo.",
    "Reacted 😂 to your message",
    "You missed a call from Sam.",
    "Sam unsent a message",
    "Alex named the group Weekend trip.",
];
const NAMES: &[&str] = &[
    "Sam",
    "Alex",
    "Łukasz Nowak",
    "Maria",
    "Jo",
    "Priya",
    "Chen Wei",
    "Olu",
    "Kasia",
    "Tom",
];

fn sentence(rng: &mut Rng, words: u64) -> String {
    let mut text = String::new();
    for i in 0..words {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(rng.pick(WORDS));
    }
    text.push_str(rng.pick(&[".", "?", "!", "", ""]));
    text
}

fn corpus() -> Vec<Message> {
    let mut rng = Rng(42);
    // Thread sizes follow 1/rank, as in real archives: a few threads hold most messages.
    let weights: Vec<f64> = (1..=THREADS).map(|rank| 1.0 / rank as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut messages = Vec::with_capacity(MESSAGES + THREADS);
    for (thread, weight) in weights.iter().enumerate() {
        let size = ((weight / total) * MESSAGES as f64).ceil() as usize;
        let people = 2 + rng.below(4) as usize;
        let offset = rng.below(NAMES.len() as u64) as usize;
        let mut clock: i64 = 1_500_000_000_000 + rng.below(1_000_000_000) as i64;
        let mut sender = 0;
        for _ in 0..size {
            clock += match rng.below(100) {
                0..=59 => 1_000 + rng.below(60_000),
                60..=94 => 60_000 + rng.below(1_800_000),
                _ => 7_200_000 + rng.below(172_800_000),
            } as i64;
            if rng.below(100) >= 60 {
                sender = rng.below(people as u64) as usize;
            }
            let (text, flags) = match rng.below(100) {
                0..=15 => (rng.pick(SHORT).to_string(), Flags::default()),
                16..=18 => (rng.pick(SYSTEM).to_string(), Flags::default()),
                19..=20 => (
                    String::new(),
                    Flags {
                        attachment: true,
                        ..Flags::default()
                    },
                ),
                21..=23 => {
                    let words = 80 + rng.below(300);
                    (sentence(&mut rng, words), Flags::default())
                }
                _ => {
                    let words = 2 + rng.below(20);
                    (sentence(&mut rng, words), Flags::default())
                }
            };
            let name = NAMES[(offset + sender) % NAMES.len()];
            messages.push(Message {
                id: format!("{thread}-{}", messages.len()),
                thread_id: format!("inbox/thread_{thread:04}"),
                thread_name: format!("Thread {thread}"),
                sender_id: name.to_lowercase(),
                sender_name: name.to_string(),
                timestamp_ms: clock,
                text,
                flags,
            });
        }
    }
    // Exports list threads in no particular order and files newest first: shuffle lightly.
    for i in (1..messages.len()).rev().step_by(7) {
        let j = rng.below(i as u64 + 1) as usize;
        messages.swap(i, j);
    }
    messages
}

fn chat(c: &mut Criterion) {
    let messages = corpus();
    let chunker = ChatChunker::default();
    let out = chunker
        .chunk(&messages)
        .expect("default settings are valid");
    eprintln!(
        "corpus: {} messages -> {} chunks ({:.1} messages per chunk)",
        out.stats.messages,
        out.stats.chunks,
        out.stats.compression_ratio()
    );
    let mut group = c.benchmark_group("chunking");
    group.sample_size(10);
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function("chat/1.2M-messages", |b| {
        b.iter(|| chunker.chunk(black_box(&messages)))
    });
    group.finish();
}

fn document(c: &mut Criterion) {
    let mut rng = Rng(7);
    let mut text = String::new();
    for section in 0..200 {
        text.push_str(&format!("## Section {section}\n\n"));
        for _ in 0..5 {
            let words = 20 + rng.below(80);
            text.push_str(&sentence(&mut rng, words));
            text.push_str("\n\n");
        }
    }
    let words = |t: &str| t.split_whitespace().count();
    let splitter = TextSplitter::new(256).with_overlap(32);
    let mut group = c.benchmark_group("chunking");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("split/markdown-word-counter", |b| {
        b.iter(|| splitter.split(black_box(&text), &words))
    });
    group.finish();
}

criterion_group!(benches, chat, document);
criterion_main!(benches);
