#!/usr/bin/env python3
"""Row-by-row agreement of two embedding matrices (.npy, same input order): min and mean cosine,
max abs difference, NaN check. Exits 1 when a row is below --min-cos or not finite.

    python3 scripts/compare_embeddings.py rembed.npy transformers.npy --min-cos 0.99
"""

import argparse
import json
import sys

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--min-cos", type=float, default=0.99)
    args = p.parse_args()
    a, b = np.load(args.a).astype(np.float64), np.load(args.b).astype(np.float64)
    if a.shape != b.shape:
        sys.exit(f"shapes differ: {a.shape} vs {b.shape}")
    finite = bool(np.isfinite(a).all() and np.isfinite(b).all())
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    report = {
        "rows": int(a.shape[0]),
        "min_cos": float(cos.min()),
        "mean_cos": float(cos.mean()),
        "max_abs_diff": float(np.abs(a - b).max()),
        "finite": finite,
        "rows_below": int((cos < args.min_cos).sum()),
    }
    print(json.dumps(report))
    if not finite or report["rows_below"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
