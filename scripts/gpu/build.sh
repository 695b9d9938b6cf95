#!/usr/bin/env bash
# Builds rembed's GPU binaries on a machine without a GPU or CUDA toolkit (the toolkit comes from
# PyPI wheels, scripts/cuda/install-toolkit.sh) and packs them for the GPU machine into .gpu/
# (git-ignored; name it in the device run's `carry`):
#   .gpu/gpu-tests.gz  tests/gpu.rs     .gpu/bench.gz  examples/bench.rs     .gpu/gpu-run.sh
# CUDA_COMPUTE_CAP picks the GPU generation (default 90: H100/H200; 89 RTX 40xx, 120 RTX 50xx).
set -euo pipefail
cd "$(dirname "$0")/../.."
# scripts/cuda/build.sh: CUDA loaded at run time (one binary for GPU and CPU machines); it installs
# the toolkit into $CUDA_TOOLKIT_DIR (default target/cuda-toolkit) when missing.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/cuda}"
scripts/cuda/build.sh build --release --example bench
tests=$(scripts/cuda/build.sh test --release --test gpu --no-run --message-format=json \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gpu" and m.get("executable"):
        print(m["executable"])')
mkdir -p .gpu
strip -o .gpu/gpu-tests "$tests" && gzip -f .gpu/gpu-tests
strip -o .gpu/bench "$CARGO_TARGET_DIR/release/examples/bench" && gzip -f .gpu/bench
cp scripts/cuda/gpu-run.sh .gpu/
ls -l .gpu
