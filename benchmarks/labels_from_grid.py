"""What the labels state against the truth, read from a `benchmarks/finetuned_grid.sh` folder (issue 17).

    bash benchmarks/finetuned_grid.sh DEMO GRID caption-shuffle "0.8 0.4 0.2" "42 43 44"      # in sample
    bash benchmarks/finetuned_grid.sh DEMO GRID caption-shuffle "0.8 0.4 0.2" "42 43 44" 3    # out of fold
    .venv/bin/python benchmarks/labels_from_grid.py GRID --base DEMO/base/run/best.pt [--kind caption-shuffle]

For each noisy file of --kind in GRID: the in-sample and out-of-fold score files the grid wrote, and a
zero-shot one from BASE (`finetune` recipe; DETECTORS below, random decoys;
written to GRID/zs-NAME.parquet once). Prints `benchmarks/labels.py`'s summary per model and detector.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd
from labels import rows_of, summary

from nctool.detect.measure import ModelSource
from nctool.detect.score import score
from nctool.schema import read_table

DETECTORS = ["rrsitr", "similarity", "siblings", "attributes", "rrsitr-attributes"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", type=Path)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--kind", default="caption-shuffle")
    args = parser.parse_args()
    rows = []
    for noisy in sorted(args.grid.glob(f"synth.{args.kind}-*.parquet")):
        name = noisy.stem.removeprefix("synth.")
        rate, seed = re.fullmatch(rf"{re.escape(args.kind)}-([\d.]+)-s(\d+)", name).groups()
        truth = read_table(noisy, columns=["pair_id", "noisy"]).set_index("pair_id")["noisy"]
        zero_shot = args.grid / f"zs-{name}.parquet"
        if not zero_shot.exists():
            score(noisy, out=zero_shot, detectors=DETECTORS, options={"scene_decoys": False},
                  model=ModelSource(model="nctool-tiny", pretrained=args.base, recipe="finetune"))
        for model, path in (("zero-shot", zero_shot), ("fine-tuned", args.grid / f"ft-{name}.scores.parquet"),
                            ("out-of-fold", args.grid / f"ft-{name}-folds3.scores.parquet")):
            if path.exists():
                rows += rows_of(path, truth, {"rate": float(rate), "seed": int(seed), "model": model})
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(summary(table[table["detector"].isin(DETECTORS)]).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
