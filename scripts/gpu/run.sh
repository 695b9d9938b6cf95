#!/usr/bin/env bash
# Runs rembed's GPU checks on the GPU machine, from the repository root, with the binaries that
# scripts/gpu/build.sh packed into .gpu/. Logs and results go to $OUT (default /tmp/rembed-gpu).
#
#   scripts/gpu/run.sh tests     tests/gpu.rs, one test at a time (bf16 parity, batch invariance,
#                                real out-of-memory halving, replicas)
#   scripts/gpu/run.sh check-8b  Qwen3-Embedding-8B's architecture with seeded random weights:
#                                rembed bf16 against transformers bf16 on the same weights and token
#                                ids, 256 inputs of mixed length; per-row cosine >= 0.99
#   scripts/gpu/run.sh bench [MODEL...]
#                                rembed and transformers (sdpa, and flash_attention_2 where it is
#                                importable) on fixed:512 and mix; rows into BENCHMARKS.md (and
#                                $OUT/rows.md). Default models: qwen3-embedding-8b bge-m3
#                                nomic-embed-text-v1.5; name fewer to fit a device call's limit.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/rembed-gpu}"
mkdir -p "$OUT"
for bin in gpu-tests bench; do
    [ -x ".gpu/$bin" ] || { gunzip -kf ".gpu/$bin.gz" && chmod +x ".gpu/$bin"; }
done
# Overrides for a dry run of this script elsewhere (GPU_RUNNER=env DEVICE=cpu): the runner that
# finds the CUDA libraries, the device, the model and size of the full-size check, and the
# inputs per benchmark workload.
runner="${GPU_RUNNER:-.gpu/gpu-run.sh}"
run() { GPU_RUN_QUIET=1 $runner "$@"; }
python="${PYTHON:-python3}"
device="${DEVICE:-cuda}"
check_model="${CHECK_MODEL:-qwen3-embedding-8b}"
check_texts="${CHECK_TEXTS:-256}"

case "${1:-}" in
tests)
    $runner .gpu/gpu-tests --test-threads=1 --nocapture 2>&1 | tee "$OUT/gpu-tests.log"
    ;;
check-8b)
    dir="/tmp/$check_model-random"
    run .gpu/bench --random-weights "$check_model" --workload mix --texts "$check_texts" --seed 1 \
        --device "$device" --save-ids "$OUT/ids-8b.json" | tee "$OUT/check-8b.log"
    dtype=bf16; [ "$device" = cpu ] && dtype=f32
    "$python" scripts/bench_transformers.py --random-weights "$check_model" --ids "$OUT/ids-8b.json" \
        --device "$device" --dtype "$dtype" --write-model "$dir" \
        --save-embeddings "$OUT/transformers-8b.npy" | tee -a "$OUT/check-8b.log"
    run .gpu/bench --model "$dir" --workload "ids:$OUT/ids-8b.json" --device "$device" \
        --save-embeddings "$OUT/rembed-8b.npy" | tee -a "$OUT/check-8b.log"
    "$python" scripts/compare_embeddings.py "$OUT/rembed-8b.npy" "$OUT/transformers-8b.npy" \
        --min-cos 0.99 | tee -a "$OUT/check-8b.log"
    ;;
bench)
    results="$OUT/bench.jsonl"
    : > "$results"
    attns=(sdpa)
    "$python" -c "import flash_attn" 2>/dev/null && attns+=(flash_attention_2)
    shift
    models=("$@")
    [ ${#models[@]} -gt 0 ] || models=(qwen3-embedding-8b bge-m3 nomic-embed-text-v1.5)
    for model in "${models[@]}"; do
        for workload in fixed:512 mix; do
            texts="${BENCH_TEXTS:-2048}"; [ "$workload" = mix ] && texts="${BENCH_MIX_TEXTS:-1536}"
            ids="$OUT/ids-$model-${workload%%:*}.json"
            run .gpu/bench --random-weights "$model" --workload "$workload" --texts "$texts" \
                --device "$device" --price-per-hour "${PRICE_PER_HOUR:-2.5}" --save-ids "$ids" \
                | tail -1 | tee -a "$results"
            for attn in "${attns[@]}"; do
                "$python" scripts/bench_transformers.py --random-weights "$model" --ids "$ids" \
                    --workload "$workload" --device "$device" --dtype bf16 --attn "$attn" \
                    --price-per-hour "${PRICE_PER_HOUR:-2.5}" | tail -1 | tee -a "$results"
            done
        done
    done
    "$python" scripts/gpu/bench_rows.py "$results" --command "scripts/gpu/run.sh bench" \
        | tee -a BENCHMARKS.md "$OUT/rows.md"
    ;;
*)
    sed -n '2,17p' "$0"
    exit 2
    ;;
esac
