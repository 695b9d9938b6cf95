#!/usr/bin/env bash
# CPU time of the Qwen3-0.6B and nomic-embed-text-v1.5 shapes (random weights, f32) in rembed and
# in transformers (sdpa attention) on the same token ids, 128 x 8 and 512 x 4 tokens x texts,
# the two engines taking turns, then a table of rembed / transformers.
# Needs: pip install torch transformers
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
cargo build --release --example bench
bench="${CARGO_TARGET_DIR:-target}/release/examples/bench"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| shape | tokens x texts | rembed (s) | transformers sdpa (s) | rembed / transformers |"
echo "| --- | --- | --- | --- | --- |"
for model in qwen3-embedding-0.6b nomic-embed-text-v1.5; do
    pooling=$([ "$model" = qwen3-embedding-0.6b ] && echo last-token || echo mean)
    for shape in 128x8 512x4; do
        tokens="${shape%x*}" texts="${shape#*x}"
        ours=$("$bench" --random-weights "$model" --workload "fixed:$tokens" --texts "$texts" \
            --device cpu --save-ids "$work/ids.json" 2>/dev/null \
            | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["seconds"])')
        theirs=$(python3 scripts/bench_transformers.py --random-weights "$model" --pooling "$pooling" \
            --ids "$work/ids.json" --device cpu --dtype f32 --attn sdpa --max-batch-tokens 2048 2>/dev/null \
            | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["seconds"])')
        python3 -c "print(f'| $model | $tokens x $texts | {$ours:.2f} | {$theirs:.2f} | {$ours/$theirs:.2f} |')"
    done
done
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
