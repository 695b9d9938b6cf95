#!/usr/bin/env python3
"""Writes examples/mixed.txt: 820 texts of mixed kinds and lengths for CPU throughput runs.

Short chat lines, the prose lines of examples/sample.txt, Rust code from this repository's
src/ (a function or block per text, newlines folded to spaces, as code search indexes it), and
about one text in eight long enough to pass 256 tokens (several sample lines or code blocks
joined). Seeded, so the file is the same on every run.

    python3 scripts/make_mixed_texts.py > examples/mixed.txt
"""
import pathlib
import random

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHAT = [
    "ok", "haha", "see you at 8?", "lol", "thanks!!", "on my way", "did the deploy finish?",
    "can you send the slides", "brb", "sounds good 👍", "who broke the build again", "np",
    "running late, start without me", "which branch is that on?", "yes", "no idea tbh",
    "the test is flaky, rerun it", "merged", "lunch?", "I'll look tomorrow",
]


def code_blocks() -> list[str]:
    blocks = []
    for path in sorted((ROOT / "src").rglob("*.rs")):
        lines = path.read_text(encoding="utf-8").splitlines()
        block: list[str] = []
        for line in lines:
            if line.strip():
                block.append(line.strip())
            elif block:
                blocks.append(" ".join(block))
                block = []
        if block:
            blocks.append(" ".join(block))
    return [b for b in blocks if len(b) > 40]


def main() -> None:
    rng = random.Random(15)
    prose = [l for l in (ROOT / "examples/sample.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
    code = code_blocks()
    texts = []
    for i in range(820):
        kind = rng.random()
        if i % 8 == 7:  # long: several prose lines or code blocks, well past 256 tokens
            pool = code if rng.random() < 0.5 else prose
            parts = []
            while sum(len(p) for p in parts) < 2000:
                parts.append(rng.choice(pool))
            texts.append(" ".join(parts))
        elif kind < 0.35:
            texts.append(rng.choice(CHAT))
        elif kind < 0.7:
            texts.append(rng.choice(prose))
        else:
            texts.append(rng.choice(code)[:1200])
    print("\n".join(texts))


if __name__ == "__main__":
    main()
