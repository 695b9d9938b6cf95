#!/usr/bin/env bash
# Builds (or tests, or lints) rembed with the `cuda` feature as one binary for GPU and CPU
# machines: CUDA is loaded at run time instead of linked, so the binary starts where there is no
# NVIDIA driver and `--device auto` falls back to the CPU.
#
# candle-core 0.11.1 asks cudarc for `dynamic-linking` (libcuda.so.1 and the toolkit libraries
# become load-time dependencies), and cudarc refuses to build with both linking modes. So this
# script copies candle-core 0.11.1 from cargo's registry into the target folder, changes that one
# feature to `dynamic-loading` in the copy's manifest, and points cargo at the copy with a
# `[patch]` given on the command line; nothing in the repository changes (Cargo.lock, which cargo
# rewrites for the patch, is put back at the end: run no other cargo command in this checkout
# meanwhile).
# candle-kernels' compiled kernels link the CUDA runtime as a shared library; its copy links the
# static one (libcudart_static.a, which loads the driver at run time) instead.
#
# Usage: scripts/cuda/build.sh CARGO-COMMAND [ARGS...]      (the `cuda` feature is added)
#   scripts/cuda/build.sh build --release --examples --tests
#   scripts/cuda/build.sh test --release --lib              (needs no GPU)
#   scripts/cuda/build.sh clippy --release --all-targets -- -D warnings
# Environment: CUDA_TOOLKIT_DIR (default target/cuda-toolkit, installed if missing),
# CARGO_TARGET_DIR (default target/cuda), CUDA_COMPUTE_CAP (default 90, set by env.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { echo "usage: $0 CARGO-COMMAND [ARGS...]" >&2; exit 2; }

toolkit=${CUDA_TOOLKIT_DIR:-$PWD/target/cuda-toolkit}
[ -f "$toolkit/env.sh" ] || scripts/cuda/install-toolkit.sh "$toolkit" >/dev/null
# shellcheck disable=SC1091
source "$toolkit/env.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/cuda}

# patch_crate CRATE FILE FROM TO: a copy of CRATE (the version in Cargo.lock, from cargo's registry)
# under $CARGO_TARGET_DIR/patched with FROM replaced by TO in FILE (which must contain FROM).
patch_crate() {
    local crate=$1 file=$2 from=$3 to=$4 dest="$CARGO_TARGET_DIR/patched/$1"
    [ -f "$dest/Cargo.toml" ] && return 0
    cargo fetch --quiet
    local source_dir
    source_dir=$(cargo metadata --format-version 1 --features cuda | CRATE=$crate python3 -c '
import json, os, sys
found = [p for p in json.load(sys.stdin)["packages"] if p["name"] == os.environ["CRATE"] and p["source"]]
if len(found) != 1:
    sys.exit("expected one %s from the registry, found %d" % (os.environ["CRATE"], len(found)))
print(os.path.dirname(found[0]["manifest_path"]))')
    rm -rf "$dest.tmp" && mkdir -p "$(dirname "$dest")"
    cp -r "$source_dir" "$dest.tmp"
    grep -qF "$from" "$dest.tmp/$file" ||
        { echo "$crate's $file no longer has $from; check $0" >&2; exit 1; }
    FROM=$from TO=$to python3 -c '
import os, sys
path = sys.argv[1]
text = open(path).read().replace(os.environ["FROM"], os.environ["TO"])
open(path, "w").write(text)' "$dest.tmp/$file"
    mv "$dest.tmp" "$dest"
}
# cudarc loads the driver and the toolkit libraries with dlopen instead of linking them.
patch_crate candle-core Cargo.toml '"dynamic-linking"' '"dynamic-loading"'
# candle-kernels' compiled kernels (MoE, quantized matmul) call the CUDA runtime: link its static
# library, which itself loads the driver at run time, instead of libcudart.so.
patch_crate candle-kernels build.rs 'rustc-link-lib=dylib=cudart"' 'rustc-link-lib=cudart_static"'

cp Cargo.lock "$CARGO_TARGET_DIR/Cargo.lock.saved"
trap 'cp "$CARGO_TARGET_DIR/Cargo.lock.saved" Cargo.lock' EXIT
command=$1
shift
patched="$CARGO_TARGET_DIR/patched"
cargo "$command" \
    --config "patch.crates-io.candle-core.path=\"$patched/candle-core\"" \
    --config "patch.crates-io.candle-kernels.path=\"$patched/candle-kernels\"" \
    --features cuda "$@"
