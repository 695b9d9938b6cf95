#!/usr/bin/env bash
# CPU time of the Qwen3-0.6B and nomic-embed-text-v1.5 shapes (random weights, f32) in rembed and
# in transformers (sdpa attention) on the same token ids, 128 x 8 and 512 x 4 tokens x texts.
# The two engines take turns for ROUNDS rounds (default 3); the table gives medians and their
# ratio. Needs: pip install torch transformers
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-3}"
export HF_HUB_OFFLINE=1
cargo build --release --example bench
bench="${CARGO_TARGET_DIR:-target}/release/examples/bench"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
seconds() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["seconds"])'; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds"
rows=()
for model in qwen3-embedding-0.6b nomic-embed-text-v1.5; do
    pooling=$([ "$model" = qwen3-embedding-0.6b ] && echo last-token || echo mean)
    for shape in 128x8 512x4; do
        tokens="${shape%x*}" texts="${shape#*x}"
        ours=() theirs=()
        for _ in $(seq "$rounds"); do
            ours+=("$("$bench" --random-weights "$model" --workload "fixed:$tokens" --texts "$texts" \
                --device cpu --save-ids "$work/ids.json" 2>/dev/null | seconds)")
            theirs+=("$(python3 scripts/bench_transformers.py --random-weights "$model" \
                --pooling "$pooling" --ids "$work/ids.json" --device cpu --dtype f32 --attn sdpa \
                --max-batch-tokens 2048 2>/dev/null | seconds)")
        done
        rows+=("$(python3 - "$model" "$tokens x $texts" "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
model, shape, ours, theirs = sys.argv[1], sys.argv[2], *(list(map(float, a.split())) for a in sys.argv[3:])
o, t = statistics.median(ours), statistics.median(theirs)
runs = lambda xs: ", ".join(f"{x:.2f}" for x in xs)
print(f"| {model} | {shape} | {runs(ours)} | {runs(theirs)} | {o:.2f} | {t:.2f} | {o / t:.2f} |")
PY
)")
    done
done
echo
echo "| shape | tokens x texts | rembed runs (s) | transformers sdpa runs (s) | rembed median | transformers median | rembed / transformers |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
