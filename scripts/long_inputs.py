#!/usr/bin/env python3
"""Tiny models with long windows, for measuring long inputs: Qwen3 at 32,768 tokens, NomicBert
(nomic-embed-text-v1.5's shape) at 8,192, and BERT at its own 512.

    python3 scripts/long_inputs.py qwen3 target/long-qwen3          # writes the model and texts
    python3 scripts/long_inputs.py qwen3 target/long-qwen3 --st 32768,15000
                                                   # sentence-transformers embeddings of those texts
    python3 scripts/long_inputs.py nomic target/long-nomic           # 8,192-token window
    python3 scripts/long_inputs.py bert target/long-bert             # 512-token window

Random weights (seeded), 2 layers, hidden 64 (Qwen3: 4 query heads sharing 2 key/value heads of
size 16; NomicBert and BERT: 4 heads). The tokenizer is word-level over `w0` .. `w999` plus the
model's special tokens (Qwen3: <|endoftext|> appended; NomicBert and BERT: [CLS] .. [SEP]), so a
text of n - 1 (Qwen3) or n - 2 words is exactly n tokens. `texts-<n>.txt` holds one text of n
tokens (one line) for each length up to the window. With --st, writes `st-<n,...>.npy` (float32,
one row per text in that order) and prints sentence-transformers' wall time and peak RSS.
"""
import json
import os
import resource
import sys
import time

WORDS = 1000
WINDOW = {"qwen3": 32768, "nomic": 8192, "bert": 512}
LENGTHS = [512, 2048, 8192, 15000, 32768]


def special_tokens(arch: str) -> int:
    """Tokens the tokenizer adds around the words."""
    return 1 if arch == "qwen3" else 2


def text_of(arch: str, tokens: int, salt: int) -> str:
    words = tokens - special_tokens(arch)
    return " ".join(f"w{(i * 7919 + salt * 104729) % WORDS}" for i in range(words))


def word_tokenizer(arch: str):
    from tokenizers import Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    if arch == "qwen3":
        specials = ["<|endoftext|>", "<unk>"]
    else:
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {token: i for i, token in enumerate(specials)}
    vocab.update({f"w{i}": i + len(specials) for i in range(WORDS)})
    tok = Tokenizer(WordLevel(vocab, unk_token=specials[1]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if arch == "qwen3":
        tok.post_processor = processors.TemplateProcessing(
            single="$A:0 <|endoftext|>:0",
            pair="$A:0 <|endoftext|>:0 $B:1 <|endoftext|>:1",
            special_tokens=[("<|endoftext|>", 0)],
        )
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
        )
        fast.padding_side = "left"
    else:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS]:0 $A:0 [SEP]:0",
            pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
            special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
        )
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
            sep_token="[SEP]", mask_token="[MASK]",
        )
    return fast, len(vocab)


def network(arch: str, vocab_size: int):
    """The transformers model, and config.json keys rembed reads beside transformers' own."""
    from transformers import BertConfig, BertModel, NomicBertConfig, NomicBertModel, Qwen3Config, Qwen3Model

    if arch == "qwen3":
        config = Qwen3Config(
            vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16,
            max_position_embeddings=WINDOW[arch], rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
            tie_word_embeddings=False, bos_token_id=0, eos_token_id=0, pad_token_id=0,
        )
        return Qwen3Model(config), {}
    if arch == "nomic":
        vocab_size = (vocab_size + 63) // 64 * 64
        config = NomicBertConfig(
            vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=128, hidden_act="silu", max_position_embeddings=WINDOW[arch],
            type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0,
            rope_parameters={"rope_type": "default", "rope_theta": 1000.0},
        )
        # nomic's own keys, as the published config.json carries them. Trained positions equal the
        # window, so no rotary scaling applies (transformers' NomicBert has none).
        extra = dict(
            activation_function="swiglu", n_embd=64, n_head=4, n_layer=2, n_inner=128,
            n_positions=WINDOW[arch], max_trained_positions=WINDOW[arch], layer_norm_epsilon=1e-12,
            prenorm=False, qkv_proj_bias=False, mlp_fc1_bias=False, mlp_fc2_bias=False,
            rotary_emb_base=1000, rotary_emb_fraction=1.0, rotary_emb_interleaved=False,
            rotary_emb_scale_base=None, rotary_scaling_factor=None, causal=False,
            pad_vocab_size_multiple=64, use_flash_attn=True,
        )
        return NomicBertModel(config), extra
    config = BertConfig(
        vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=WINDOW[arch], pad_token_id=0,
    )
    return BertModel(config, add_pooling_layer=False), {}


def write_model(arch: str, out: str) -> None:
    import tempfile

    import torch
    from sentence_transformers import SentenceTransformer, models

    fast, vocab_size = word_tokenizer(arch)
    torch.manual_seed(14)
    model, extra = network(arch, vocab_size)
    model.eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(0.0, 0.2)
            if name.endswith("norm.weight") or name.endswith("LayerNorm.weight"):
                p.add_(1.0)
    pooling = "lasttoken" if arch == "qwen3" else "mean"
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        fast.save_pretrained(tmp)
        transformer = models.Transformer(tmp, max_seq_length=WINDOW[arch])
        modules = [transformer, models.Pooling(64, pooling_mode=pooling), models.Normalize()]
        SentenceTransformer(modules=modules, device="cpu").save(out, safe_serialization=True)
    if extra:
        path = os.path.join(out, "config.json")
        with open(path) as f:
            config = json.load(f)
        config.update(extra)
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
    with open(os.path.join(out, "arch"), "w") as f:
        f.write(arch + "\n")
    for n in [n for n in LENGTHS if n <= WINDOW[arch]]:
        with open(os.path.join(out, f"texts-{n}.txt"), "w") as f:
            f.write(text_of(arch, n, n) + "\n")


def st_embed(arch: str, out: str, sizes: list) -> None:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(os.cpu_count())
    st = SentenceTransformer(out, device="cpu", model_kwargs={"attn_implementation": "sdpa"})
    texts = [text_of(arch, n, n) for n in sizes]
    start = time.time()
    emb = st.encode(texts, batch_size=1, convert_to_numpy=True)
    seconds = time.time() - start
    name = ",".join(str(n) for n in sizes)
    np.save(os.path.join(out, f"st-{name}.npy"), emb.astype(np.float32))
    lengths = [len(st.tokenize([t])["input_ids"][0]) for t in texts]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tokens": lengths, "seconds": seconds, "peak_rss_mib": peak}))


if __name__ == "__main__":
    arch, out = sys.argv[1], sys.argv[2]
    if arch not in WINDOW:
        sys.exit(f"architecture must be one of {sorted(WINDOW)}, not {arch!r}")
    if "--st" in sys.argv:
        st_embed(arch, out, [int(n) for n in sys.argv[sys.argv.index("--st") + 1].split(",")])
    else:
        os.makedirs(out, exist_ok=True)
        write_model(arch, out)
