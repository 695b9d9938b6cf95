#!/usr/bin/env python3
"""Markdown rows for BENCHMARKS.md from the JSON lines of `bench` and bench_transformers.py: one
row per system and workload, with device, date, commit and the command that produced them."""

import argparse
import datetime
import json
import subprocess


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results")
    p.add_argument("--command", required=True)
    args = p.parse_args()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    date = datetime.date.today().isoformat()
    print(f"\n### {date}, commit {commit}: `{args.command}`\n")
    print("| model | workload | system | device | tokens/s | texts/s | MFU | peak GiB | $/M tokens |")
    print("|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v, f: "n/a" if v is None else f.format(v)
    with open(args.results) as f:
        for line in f:
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            print(f"| {r['model']} | {r['workload']} | {r['system']} | {r['device']} | "
                  f"{r['tokens_per_s']:.0f} | {r['texts_per_s']:.1f} | {fmt(r['mfu'], '{:.1%}')} | "
                  f"{fmt(r['peak_memory_gib'], '{:.2f}')} | {fmt(r['usd_per_million_tokens'], '{:.4f}')} |")


if __name__ == "__main__":
    main()
