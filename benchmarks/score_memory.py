"""Peak memory of `score` (local engine) against the number of pairs, and where it grows.

Usage:
    .venv/bin/python benchmarks/score_memory.py WORKDIR --pairs 10000 --pairs 100000 \
        --detector similarity --detector rrsitr [--model nctool-tiny --recipe rsitmd]

Builds the inputs cheaply, once per size: 1,000 synthetic images (nctool.data.synth) written as PNG
files under WORKDIR/images, then WORKDIR/pairs-N.parquet with N train pairs that reuse them (pair k:
image (k // 5) mod 1000, that image's caption k mod 5; unique pair ids), written in row groups of
4,096 rows with relative paths. Each (size, detector) is scored in its own subprocess; it reports
its peak RSS (getrusage) and, at each change of progress phase and every tenth of "score pairs",
its RSS and peak so far (/proc/self/status), which shows what grows with the pairs.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

from nctool.data.synth import CAPTIONS_PER_IMAGE, generate
from nctool.schema import TableWriter

IMAGES = 1000
ROWS_PER_WRITE = 100_000

CHILD = r"""
import json, resource, sys, time
from nctool.detect.score import score
data, out, detector, model, recipe = sys.argv[1:6]
profile, last = [], {"what": None, "tenth": -1}

def memory():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {key: int(fields[key].split()[0]) // 1024 for key in ("VmRSS", "VmHWM")}

def progress(done, total, what):
    tenth = 10 * done // total if what == "score pairs" else -1
    if what != last["what"] or tenth != last["tenth"]:
        profile.append({"what": what, "done": done, "total": total, "seconds": round(time.perf_counter() - start, 1),
                        **memory()})
        last.update(what=what, tenth=tenth)

start = time.perf_counter()
result = score(data, out=out, model=model, recipe=recipe, detectors=[detector], progress=progress)
profile.append({"what": "written", "seconds": round(time.perf_counter() - start, 1), **memory()})
print(json.dumps({"pairs": result["pairs"], "detector": detector, "seconds": time.perf_counter() - start,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "profile": profile}))
"""


def images_and_captions(workdir: Path) -> list[list[str]]:
    """Write the IMAGES synthetic images as PNG files once; return each image's captions."""
    frame = generate(IMAGES, seed=3)
    (workdir / "images").mkdir(parents=True, exist_ok=True)
    for i, (image, group) in enumerate(frame.groupby("image_id", sort=True)):
        file = workdir / "images" / f"{i:04d}.png"
        if not file.exists():
            file.write_bytes(group["image"].iloc[0]["bytes"])
    return [group["caption"].tolist() for _, group in frame.groupby("image_id", sort=True)]


def pairs_file(workdir: Path, pairs: int, captions: list[list[str]]) -> Path:
    """WORKDIR/pairs-N.parquet: N train pairs over the IMAGES image files (made once)."""
    path = workdir / f"pairs-{pairs}.parquet"
    if path.exists():
        return path
    with TableWriter(path, image_root=workdir) as writer:
        for start in range(0, pairs, ROWS_PER_WRITE):
            rows = range(start, min(start + ROWS_PER_WRITE, pairs))
            images = [(k // CAPTIONS_PER_IMAGE) % IMAGES for k in rows]
            writer.write(pd.DataFrame({
                "pair_id": [f"p{k:08d}" for k in rows], "image_id": [f"img{i:04d}" for i in images],
                "image": [{"bytes": None, "path": f"images/{i:04d}.png"} for i in images],
                "caption": [captions[i][k % CAPTIONS_PER_IMAGE] for i, k in zip(images, rows)], "split": "train"}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--pairs", type=int, action="append", required=True)
    parser.add_argument("--detector", action="append", required=True)
    parser.add_argument("--model", default="nctool-tiny")
    parser.add_argument("--recipe", default="rsitmd", help="loss settings (rsitmd: local term on)")
    args = parser.parse_args()
    captions = images_and_captions(args.workdir)
    for pairs in args.pairs:
        data = pairs_file(args.workdir, pairs, captions)
        for detector in args.detector:
            out = subprocess.run([sys.executable, "-c", CHILD, str(data),
                                  str(args.workdir / f"scores-{pairs}-{detector}.parquet"),
                                  detector, args.model, args.recipe], capture_output=True, text=True, check=True)
            print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
