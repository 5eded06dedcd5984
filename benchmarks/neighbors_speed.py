"""Time and peak memory of the `neighbors` detector: exact torch search against the faiss index.

Usage: .venv/bin/python benchmarks/neighbors_speed.py [--pairs 10000 --pairs 100000] [--dim 512]

Random L2-normalised image and caption embeddings (5 captions per image, seed 0) stand in for a
model's. Each (pairs, index) runs in its own process, so its peak resident memory (ru_maxrss) is
its own; the table gives the detector's wall time, the peak RSS above what the process held once
the embeddings were made, and how far the faiss reliabilities are from the exact ones. The detector
includes its mixture fit (labels); the search dominates from 10,000 pairs on.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def one(pairs: int, dim: int, index: str, out: Path) -> dict:
    """Score `pairs` random pairs with one neighbour index; reliabilities saved to `out`."""
    import torch
    import torch.nn.functional as F

    from nctool.detect.detectors import Evidence, NeighborsDetector

    gen = torch.Generator().manual_seed(0)
    image = F.normalize(torch.randn(pairs // 5, dim, generator=gen), dim=1).repeat_interleave(5, 0)
    text = F.normalize(torch.randn(pairs, dim, generator=gen), dim=1)
    evidence = Evidence(pair_id=np.char.mod("p%07d", np.arange(pairs)),
                        image_id=np.char.mod("i%07d", np.arange(pairs) // 5),
                        similarity=(image * text).sum(1).double().numpy(), image_global=image, text_global=text)
    detector = NeighborsDetector(neighbor_index=index)  # imports faiss
    import nctool.detect.calibration  # noqa: F401  (sklearn: imported by detect, not part of the search's memory)

    base = _rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    frame = detector.detect(evidence)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    np.save(out, frame["reliability"].to_numpy())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"pairs": pairs, "index": index, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
            "peak_mb_above_embeddings": round(peak - base)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, action="append")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--one", nargs=2, metavar=("INDEX", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.pairs[0], args.dim, args.one[0], Path(args.one[1]))))
        return
    print("| pairs | index | wall s | CPU s (all threads) | peak MB above the embeddings "
          "| max abs reliability diff vs exact |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for pairs in args.pairs or [10_000, 100_000]:
            for index in ("exact", "faiss"):
                out = Path(tmp) / f"{pairs}-{index}.npy"
                done = subprocess.run([sys.executable, __file__, "--pairs", str(pairs), "--dim", str(args.dim),
                                       "--one", index, str(out)], capture_output=True, text=True, check=True)
                row = json.loads(done.stdout.splitlines()[-1])
                diff = np.abs(np.load(out) - np.load(Path(tmp) / f"{pairs}-exact.npy")).max()
                print(f"| {pairs:,} | {index} | {row['seconds']} | {row['cpu_seconds']} | "
                      f"{row['peak_mb_above_embeddings']} | {diff:.2g} |", flush=True)


if __name__ == "__main__":
    main()
