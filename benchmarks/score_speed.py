"""Scoring throughput against the bare forward pass, and peak memory (nctool-tiny, CPU).

Usage: .venv/bin/python benchmarks/score_speed.py DATA CHECKPOINT [--detector rrsitr ...]
Each measurement runs in a fresh subprocess so its peak RSS is its own.
"""

import argparse
import json
import subprocess
import sys

from nctool.detectors import detector_names

CHILD = r"""
import json, resource, sys, time
import torch
from nctool.checkpoint import load_trained_model
from nctool.data import PairData, encode_dataset
from nctool.images import resolve_root
from nctool.schema import read_table
from nctool.scoring import score
from nctool.transforms import preprocess_for
data, ckpt, what = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
if what == "bare":
    model, recipe, _ = load_trained_model(ckpt)
    frame = read_table(data, splits=["train"])
    pairs = PairData(frame, resolve_root(data), preprocess_for(model))
    encode_dataset(model, pairs, local=recipe.loss.use_local)
    n = len(frame)
else:
    n = score(data, checkpoint=ckpt, out="/tmp/score_speed.parquet", detectors=[what])["pairs"]
seconds = time.perf_counter() - start
print(json.dumps({"what": what, "pairs": n, "seconds": seconds, "pairs_per_s": n / seconds,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("checkpoint")
    parser.add_argument("--detector", action="append", default=None, choices=[*detector_names(), "all"])
    args = parser.parse_args()
    for what in ["bare", *(args.detector or ["similarity", "rrsitr", "all"])]:
        out = subprocess.run([sys.executable, "-c", CHILD, args.data, args.checkpoint, what],
                             capture_output=True, text=True, check=True)
        print(json.loads(out.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
