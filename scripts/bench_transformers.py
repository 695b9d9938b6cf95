#!/usr/bin/env python3
"""The PyTorch side of `examples/bench.rs`: Hugging Face transformers on the same token ids, with
the same length-sorted token-budget batching, printing the same JSON line.

    python3 scripts/bench_transformers.py --random-weights qwen3-embedding-8b --ids ids.json \
        --device cuda --dtype bf16 --attn sdpa --price-per-hour 2.5

`--ids` is the file `bench --save-ids` wrote. `--random-weights NAME` builds the registry model's
architecture from `models.toml` with transformers' own seeded initialisation (speed does not depend
on the values); `--model DIR` loads a model directory (the same weights rembed loads, for checking
that both agree). `--write-model DIR` saves the random-weight model as a directory rembed can load.
FLOPs per token are counted as in `src/flops.rs`.
"""

import argparse
import json
import math
import os
import shutil
import sys
import time
import tomllib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def registry_entry(name):
    """The registry entry, with what it leaves out taken from its architecture's conventions."""
    with open(os.path.join(ROOT, "models.toml"), "rb") as f:
        registry = tomllib.load(f)
    wanted = name.lower()
    for m in registry["model"]:
        if wanted == m["name"] or wanted in (a.lower() for a in m.get("aliases", [])):
            return {**registry.get("architecture", {}).get(m.get("architecture"), {}), **m}
    sys.exit(f"unknown registry model {name}")


def transformers_config(entry):
    """The registry's [model.config] as a transformers config."""
    import transformers

    c = dict(entry["config"])
    kind = c.pop("model_type")
    if kind == "bert":
        return transformers.BertConfig(**c)
    if kind == "xlm-roberta":
        return transformers.XLMRobertaConfig(**c)
    if kind == "qwen3":
        theta = c.pop("rope_theta")
        return transformers.Qwen3Config(**c, rope_parameters={"rope_type": "default", "rope_theta": theta})
    if kind == "nomic_bert":
        return transformers.NomicBertConfig(
            vocab_size=c["vocab_size"], hidden_size=c["n_embd"], num_hidden_layers=c["n_layer"],
            num_attention_heads=c["n_head"], intermediate_size=c["n_inner"], hidden_act="silu",
            max_position_embeddings=c["n_positions"], type_vocab_size=c["type_vocab_size"],
            layer_norm_eps=c["layer_norm_epsilon"],
            rope_parameters={"rope_type": "default", "rope_theta": float(c["rotary_emb_base"])},
        )
    sys.exit(f"no transformers config for model_type {kind}")


def flops_per_sequence(config, tokens):
    """Mirrors src/flops.rs: 2 FLOPs per matrix weight per token plus the attention products."""
    h, layers, heads = config.hidden_size, config.num_hidden_layers, config.num_attention_heads
    inner = getattr(config, "intermediate_size", 4 * h)
    kind = config.model_type
    if kind == "qwen3":
        d = getattr(config, "head_dim", None) or h // heads
        kv = config.num_key_value_heads or heads
        per_layer = 2 * h * heads * d + 2 * h * kv * d + 3 * h * inner
        width, share = heads * d, 0.5
    elif kind == "nomic_bert":
        per_layer, width, share = 4 * h * h + 3 * h * inner, h, 1.0
    else:
        per_layer, width, share = 4 * h * h + 2 * h * inner, h, 1.0
    return 2 * per_layer * layers * tokens + 4 * share * layers * width * tokens * tokens


def plan_batches(lengths, budget):
    """Longest first; a batch grows while its padded size (rows x longest) fits the budget."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, current = [], []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) + 1) * longest > budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def pool(hidden, mask, lengths, pooling):
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last-token":
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), lengths - 1]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1)


def main():
    p = argparse.ArgumentParser()
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model directory (transformers layout, or its 0_Transformer)")
    src.add_argument("--random-weights", help="registry model name")
    p.add_argument("--ids", required=True, help="JSON list of token-id lists (bench --save-ids)")
    p.add_argument("--pooling", help="cls, mean or last-token (default: the registry's)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "f16", "f32"])
    p.add_argument("--attn", default="sdpa", help="sdpa, flash_attention_2 or eager")
    p.add_argument("--max-batch-tokens", type=int, default=16384)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--price-per-hour", type=float)
    p.add_argument("--corpus-tokens", type=int, default=1_000_000_000)
    p.add_argument("--peak-tflops", type=float)
    p.add_argument("--workload", default="ids", help="label for the report")
    p.add_argument("--save-embeddings")
    p.add_argument("--write-model", help="save the random-weight model here for rembed")
    args = p.parse_args()

    import transformers

    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[args.dtype]
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    load_start = time.perf_counter()
    if args.random_weights:
        entry = registry_entry(args.random_weights)
        config = transformers_config(entry)
        torch.set_default_dtype(dtype)
        with device:
            model = transformers.AutoModel.from_config(config, attn_implementation=args.attn)
        torch.set_default_dtype(torch.float32)
        label = f"{entry['name']} (random weights)"
        pooling = args.pooling or entry["pooling"]
        normalize = entry.get("normalize", False)
        if args.write_model:
            model.save_pretrained(args.write_model, safe_serialization=True)
            # rembed needs a tokenizer file to load a directory; inputs are ids, so any will do.
            shutil.copy(os.path.join(ROOT, "tests/fixtures/qwen3/tokenizer.json"), args.write_model)
    else:
        path = args.model
        if os.path.isdir(os.path.join(path, "0_Transformer")):
            path = os.path.join(path, "0_Transformer")
        model = transformers.AutoModel.from_pretrained(path, dtype=dtype, attn_implementation=args.attn).to(device)
        config = model.config
        label = args.model
        pooling = args.pooling or {"qwen3": "last-token"}.get(config.model_type, "mean")
        normalize = True
    model.eval()
    load_seconds = time.perf_counter() - load_start

    with open(args.ids) as f:
        ids = json.load(f)
    lengths = [len(x) for x in ids]
    tokens = sum(lengths)
    batches = plan_batches(lengths, args.max_batch_tokens)
    pad = getattr(config, "pad_token_id", None) or 0

    def run(batch_list):
        out = {}
        for batch in batch_list:
            longest = max(lengths[i] for i in batch)
            input_ids = torch.full((len(batch), longest), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), longest), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, : lengths[i]] = torch.tensor(ids[i])
                mask[row, : lengths[i]] = 1
            input_ids, mask = input_ids.to(device), mask.to(device)
            lens = mask.sum(1)
            hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            vectors = pool(hidden, mask, lens, pooling).float()
            if normalize:
                vectors = torch.nn.functional.normalize(vectors, dim=-1)
            for row, i in enumerate(batch):
                out[i] = vectors[row]
        return out

    with torch.inference_mode():
        run(batches[:1])  # warm-up on the longest inputs
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        rows = run(batches)
        vectors = torch.stack([rows[i] for i in range(len(ids))]).cpu().numpy()
        seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    if args.save_embeddings:
        np.save(args.save_embeddings, vectors.astype(np.float32))

    flop = sum(flops_per_sequence(config, n) for n in lengths)
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    peak_tflops = args.peak_tflops
    if peak_tflops is None and dtype != torch.float32 and ("H100" in gpu or "H200" in gpu):
        peak_tflops = 989.0
    tps = tokens / seconds
    corpus_hours = args.corpus_tokens / tps / 3600
    report = {
        "system": f"transformers {transformers.__version__} ({args.attn})",
        "model": label,
        "workload": args.workload,
        "device": gpu,
        "replicas": 1,
        "dtype": args.dtype,
        "max_batch_tokens": args.max_batch_tokens,
        "texts": len(ids),
        "tokens": tokens,
        "seconds": seconds,
        "load_seconds": load_seconds,
        "tokens_per_s": tps,
        "texts_per_s": len(ids) / seconds,
        "gflop_per_token": flop / tokens / 1e9,
        "mfu": flop / seconds / (peak_tflops * 1e12) if peak_tflops else None,
        "peak_memory_gib": peak,
        "usd_per_million_tokens": args.price_per_hour / (tps * 3600) * 1e6 if args.price_per_hour else None,
        "corpus_tokens": args.corpus_tokens,
        "corpus_hours": corpus_hours,
        "corpus_usd": args.price_per_hour * corpus_hours if args.price_per_hour else None,
        "finite": bool(np.isfinite(vectors).all()),
    }
    print(f"{label} {args.workload}: {tokens} tokens in {seconds:.2f} s = {tps:.0f} tokens/s")
    print(json.dumps(report))
    if not report["finite"] or any(math.isnan(v) for v in vectors.flat[:1]):
        sys.exit("the embeddings hold NaN or infinity")


if __name__ == "__main__":
    main()
