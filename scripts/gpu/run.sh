#!/usr/bin/env bash
# Runs rembed's GPU checks on the GPU machine, from the repository root, with the binaries that
# scripts/gpu/build.sh packed into .gpu/. Every command runs under `timeout` and stays well inside
# one 600 s device call; scripts/gpu/README has the plan, the estimates and the exact calls.
# Logs and results go to $OUT (default /tmp/rembed-gpu; at most 8 files, so they all come back),
# bulky intermediates (token ids, embeddings, an 8B checkpoint) to $WORK (/tmp/rembed-gpu-work).
#
#   scripts/gpu/run.sh probe     <= 30 s: the GPU is there (name, free memory), a bf16 matrix
#                                product runs at a sane rate, the binaries find their libraries
#   scripts/gpu/run.sh tests     <= 420 s: tests/gpu.rs one test at a time, each under its own
#                                timeout (bf16 parity, batch invariance, real out-of-memory
#                                halving, replicas); the rest still run when one hangs
#   scripts/gpu/run.sh warm [MODEL...]
#                                untimed small runs that compile and load candle's kernels
#                                (PTX JIT, cached by the driver for later processes)
#   scripts/gpu/run.sh check-8b  <= 540 s: Qwen3-Embedding-8B's architecture with seeded random
#                                weights: rembed bf16 against transformers bf16 on the same weights
#                                and token ids, 256 inputs of mixed length; per-row cosine >= 0.99
#   scripts/gpu/run.sh bench MODEL...
#                                warm, then rembed and transformers (sdpa, and flash_attention_2
#                                where it is importable) on fixed:512 and mix; rows into
#                                BENCHMARKS.md and $OUT/rows.md. Name few enough models to fit one
#                                call (README: qwen3-embedding-8b alone; bge-m3 with
#                                nomic-embed-text-v1.5)
#
# $OUT/steps.tsv gets one line per timed step: name, limit, seconds taken, exit status (124: it
# hit its limit). Exit status: the first failing step's.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
# The driver compiles candle's PTX on first use and caches the result on disk for later processes
# (what `warm` relies on); keep the cache on and large enough for every kernel.
unset CUDA_CACHE_DISABLE
export CUDA_CACHE_MAXSIZE=4294967296
OUT="${OUT:-/tmp/rembed-gpu}"
WORK="${WORK:-/tmp/rembed-gpu-work}"
mkdir -p "$OUT" "$WORK"
# Overrides for a dry run of this script elsewhere (GPU_RUNNER=env DEVICE=cpu): the runner that
# finds the CUDA libraries, the device, the model and size of the full-size check, and the
# inputs per benchmark workload.
runner="${GPU_RUNNER:-.gpu/gpu-run.sh}"
python="${PYTHON:-python3}"
device="${DEVICE:-cuda}"
check_model="${CHECK_MODEL:-qwen3-embedding-8b}"
check_texts="${CHECK_TEXTS:-256}"
# Limits in seconds; the estimates beside them are in scripts/gpu/README.
limit_test="${LIMIT_TEST:-150}"   # one test of tests/gpu.rs
limit_tests="${LIMIT_TESTS:-420}" # all of them
limit_warm="${LIMIT_WARM:-120}"   # one model's warm-up
limit_bench="${LIMIT_BENCH:-150}" # one timed run, rembed or transformers

for bin in gpu-tests bench; do
    [ -x ".gpu/$bin" ] || { gunzip -kf ".gpu/$bin.gz" && chmod +x ".gpu/$bin"; }
done

log="$OUT/${1:-usage}.log"
# step NAME LIMIT COMMAND...: COMMAND under `timeout` (TERM at LIMIT seconds, KILL 10 s later),
# its output to stdout and appended to $log; one line in $OUT/steps.tsv.
step() {
    local name=$1 limit=$2 start=$SECONDS rc=0
    shift 2
    echo "== $name (limit ${limit}s)" | tee -a "$log"
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$log" || rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$limit" "$((SECONDS - start))" "$rc" >>"$OUT/steps.tsv"
    case $rc in
    0) ;;
    124 | 137) echo "== $name: TIMED OUT after ${limit}s" | tee -a "$log" ;;
    *) echo "== $name: exit $rc" | tee -a "$log" ;;
    esac
    return "$rc"
}
# A rembed binary with its CUDA libraries found. gpu-run.sh searches the Python environment for
# them (100k+ files: seconds each time), so that is done once here and its LD_LIBRARY_PATH kept;
# the probe runs gpu-run.sh itself, with its diagnostics.
rembed=(env GPU_RUN_QUIET=1 "$runner")
if [ "$runner" = .gpu/gpu-run.sh ] && [ "${1:-}" != probe ]; then
    LD_LIBRARY_PATH=$(GPU_RUN_QUIET=1 timeout 60 "$runner" printenv LD_LIBRARY_PATH)
    export LD_LIBRARY_PATH
    rembed=(env)
fi

# warm MODEL...: each model once on a few short and long inputs, untimed, so that no later timing
# includes the one-time compilation and loading of kernels.
warm() {
    local model log="$OUT/warm.log"
    for model in "$@"; do
        step "warm $model" "$limit_warm" "${rembed[@]}" .gpu/bench --random-weights "$model" \
            --workload mix --texts 64 --seed 99 --device "$device" >/dev/null
    done
}

case "${1:-}" in
probe)
    step "probe torch" 20 "$python" - "$device" <<'EOF'
import json, sys, time
import torch
device = sys.argv[1]
start = time.perf_counter()
if device.startswith("cuda"):
    assert torch.cuda.is_available(), "PyTorch sees no CUDA device"
    dev = torch.device(device)
    name = torch.cuda.get_device_name(dev)
    free, total = torch.cuda.mem_get_info(dev)
    sync = torch.cuda.synchronize
else:
    dev, name, free, total, sync = torch.device("cpu"), "cpu", None, None, lambda: None
n = 8192 if device.startswith("cuda") else 512
a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
for _ in range(3):
    c = a @ b
sync()
t = time.perf_counter()
for _ in range(10):
    c = a @ b
sync()
seconds = time.perf_counter() - t
report = {
    "device": name,
    "free_gib": free and round(free / 2**30, 1),
    "total_gib": total and round(total / 2**30, 1),
    "bf16_tflops": round(2 * n**3 * 10 / seconds / 1e12, 1),
    "finite": bool(torch.isfinite(c).all()),
    "probe_seconds": round(time.perf_counter() - start, 1),
}
print(json.dumps(report))
assert report["finite"], "the bf16 product is not finite"
# The out-of-memory tests squeeze the whole device: someone else's allocation would skew them.
assert free is None or free > 0.9 * total, f"only {free / 2**30:.0f} GiB of {total / 2**30:.0f} GiB free"
EOF
    # Not quiet: nvidia-smi, the libraries chosen, `ldd`; exit 127 if one is unresolved.
    step "probe binaries" 10 "$runner" .gpu/bench --help >/dev/null
    ;;
tests)
    mapfile -t names < <(timeout 30 "${rembed[@]}" .gpu/gpu-tests --list --format terse |
        sed -n 's/: test$//p')
    [ ${#names[@]} -gt 0 ] || { echo "no tests listed by .gpu/gpu-tests" >&2; exit 1; }
    failed=()
    for name in "${names[@]}"; do
        if ((SECONDS + limit_test > limit_tests)); then
            echo "== $name: NOT RUN (less than ${limit_test}s left of ${limit_tests}s)" | tee -a "$log"
            failed+=("$name (not run)")
            continue
        fi
        step "test $name" "$limit_test" "${rembed[@]}" .gpu/gpu-tests --exact "$name" --test-threads=1 \
            --nocapture || failed+=("$name")
    done
    if [ ${#failed[@]} -gt 0 ]; then
        printf 'FAILED: %s\n' "${failed[@]}" | tee -a "$log"
        exit 1
    fi
    echo "all ${#names[@]} GPU tests passed" | tee -a "$log"
    ;;
warm)
    shift
    [ $# -gt 0 ] || set -- "$check_model"
    warm "$@"
    ;;
check-8b)
    dir="$WORK/$check_model-random"
    dtype=bf16
    [ "$device" = cpu ] && dtype=f32
    step "check rembed ids" 150 "${rembed[@]}" .gpu/bench --random-weights "$check_model" --workload mix \
        --texts "$check_texts" --seed 1 --device "$device" --save-ids "$WORK/ids-8b.json"
    rm -rf "$dir"
    step "check transformers" 200 "$python" scripts/bench_transformers.py \
        --random-weights "$check_model" --ids "$WORK/ids-8b.json" --device "$device" \
        --dtype "$dtype" --write-model "$dir" --save-embeddings "$WORK/transformers-8b.npy"
    step "check rembed" 150 "${rembed[@]}" .gpu/bench --model "$dir" --workload "ids:$WORK/ids-8b.json" \
        --device "$device" --save-embeddings "$WORK/rembed-8b.npy"
    step "check compare" 30 "$python" scripts/compare_embeddings.py "$WORK/rembed-8b.npy" \
        "$WORK/transformers-8b.npy" --min-cos 0.99
    ;;
bench)
    shift
    [ $# -gt 0 ] || { sed -n '2,30p' "$0"; exit 2; }
    results="$OUT/bench.jsonl"
    first=1 # the first line of the log that is this run's
    [ -f "$log" ] && first=$(($(wc -l <"$log") + 1))
    attns=(sdpa)
    "$python" -c "import flash_attn" 2>/dev/null && attns+=(flash_attention_2)
    warm "$@"
    for model in "$@"; do
        for workload in fixed:512 mix; do
            texts="${BENCH_TEXTS:-2048}"
            [ "$workload" = mix ] && texts="${BENCH_MIX_TEXTS:-1536}"
            ids="$WORK/ids-$model-${workload%%:*}.json"
            step "bench rembed $model $workload" "$limit_bench" "${rembed[@]}" .gpu/bench \
                --random-weights "$model" --workload "$workload" --texts "$texts" \
                --device "$device" --price-per-hour "${PRICE_PER_HOUR:-2.5}" --save-ids "$ids"
            for attn in "${attns[@]}"; do
                step "bench transformers $attn $model $workload" "$limit_bench" "$python" \
                    scripts/bench_transformers.py --random-weights "$model" --ids "$ids" \
                    --workload "$workload" --device "$device" --dtype bf16 --attn "$attn" \
                    --price-per-hour "${PRICE_PER_HOUR:-2.5}"
            done
        done
    done
    tail -n "+$first" "$log" | grep '^{' >"$results"
    "$python" scripts/gpu/bench_rows.py "$results" --command "scripts/gpu/run.sh bench $*" |
        tee -a BENCHMARKS.md "$OUT/rows.md"
    ;;
*)
    sed -n '2,30p' "$0"
    exit 2
    ;;
esac
