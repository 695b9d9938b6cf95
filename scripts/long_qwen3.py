#!/usr/bin/env python3
"""A tiny Qwen3 with a 32,768-token window, for measuring long inputs (issue 14).

    python3 scripts/long_qwen3.py target/long-qwen3            # writes the model and texts
    python3 scripts/long_qwen3.py target/long-qwen3 --st 32768,15000   # sentence-transformers
                                                               # embeddings of those texts

The model: random weights (seeded), 2 layers, hidden 64, 4 query heads sharing 2 key/value heads
of size 16, max_seq_length 32,768. The tokenizer is word-level over `w0` .. `w999` plus
<|endoftext|> appended, so a text of n - 1 words is exactly n tokens. `texts-<n>.txt` holds one
text of n tokens (one line). With --st, writes `st-<n,...>.npy` (float32, one row per text in
that order) and prints sentence-transformers' wall time and peak RSS.
"""
import json
import os
import resource
import sys
import time

WORDS = 1000


def text_of(tokens: int, salt: int) -> str:
    return " ".join(f"w{(i * 7919 + salt * 104729) % WORDS}" for i in range(tokens - 1))


def write_model(out: str) -> None:
    import torch
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model
    import tempfile

    vocab = {"<|endoftext|>": 0, "<unk>": 1}
    vocab.update({f"w{i}": i + 2 for i in range(WORDS)})
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="$A:0 <|endoftext|>:0",
        pair="$A:0 <|endoftext|>:0 $B:1 <|endoftext|>:1",
        special_tokens=[("<|endoftext|>", 0)],
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.padding_side = "left"
    torch.manual_seed(14)
    config = Qwen3Config(
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    model = Qwen3Model(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(0.0, 0.2)
            if name.endswith("norm.weight"):
                p.add_(1.0)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        fast.save_pretrained(tmp)
        transformer = models.Transformer(tmp, max_seq_length=32768)
        modules = [transformer, models.Pooling(64, pooling_mode="lasttoken"), models.Normalize()]
        SentenceTransformer(modules=modules, device="cpu").save(out, safe_serialization=True)
    for n in [512, 2048, 8192, 15000, 32768]:
        with open(os.path.join(out, f"texts-{n}.txt"), "w") as f:
            f.write(text_of(n, n) + "\n")


def st_embed(out: str, sizes: list) -> None:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(os.cpu_count())
    st = SentenceTransformer(out, device="cpu", model_kwargs={"attn_implementation": "sdpa"})
    texts = [text_of(n, n) for n in sizes]
    start = time.time()
    emb = st.encode(texts, batch_size=1, convert_to_numpy=True)
    seconds = time.time() - start
    name = ",".join(str(n) for n in sizes)
    np.save(os.path.join(out, f"st-{name}.npy"), emb.astype(np.float32))
    lengths = [len(st.tokenize([t])["input_ids"][0]) for t in texts]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tokens": lengths, "seconds": seconds, "peak_rss_mib": peak}))


if __name__ == "__main__":
    out = sys.argv[1]
    if "--st" in sys.argv:
        st_embed(out, [int(n) for n in sys.argv[sys.argv.index("--st") + 1].split(",")])
    else:
        os.makedirs(out, exist_ok=True)
        write_model(out)
