"""The word tagger's worth to the attribute detectors over a `benchmarks/finetuned_grid.sh` folder (issue 19).

    nctool train-tagger CORPUS --out TAGGER       # CORPUS: captions you trust, e.g. a base corpus
    .venv/bin/python benchmarks/tagger.py GRID --tagger TAGGER [--kind category] [--weight 0 --weight 0.5 ...]
        [--folds 3] [--detector rrsitr-attributes]

For each noisy file of --kind in GRID (synth.KIND-RATE-sSEED.parquet) and the model the grid fine-tuned on it
(ft-NAME/best.pt, or with --folds the out-of-fold run ft-NAME-foldsK), scores the train pairs with
`--detector attributes --tagger TAGGER` (or --detector rrsitr-attributes) at each --tagger-weight (0: the
detector without the tagger; random decoys) and prints the AUROCs, the tagger's vote alone (`tagger_support`),
and for category noise the same against the captions that are really wrong, the moved ones true of their new
image left out (benchmarks/hard_noise_truth.py).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd
from hard_noise_truth import truly_wrong

from nctool.detect.measure import ModelSource
from nctool.detect.score import score
from nctool.metrics import detection_metrics
from nctool.schema import read_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", type=Path)
    parser.add_argument("--tagger", type=Path, required=True)
    parser.add_argument("--kind", default="category")
    parser.add_argument("--weight", type=float, action="append", dest="weights")
    parser.add_argument("--folds", type=int)
    parser.add_argument("--detector", default="attributes", choices=["attributes", "rrsitr-attributes"])
    parser.add_argument("--synth-seed", type=int, default=3, help="the synth seed of the grid's clean data")
    args = parser.parse_args()
    weights = args.weights or [0.0, 0.5, 2.0]
    prefix = "tagger" if args.detector == "attributes" else args.detector
    rows = []
    for noisy in sorted(args.grid.glob(f"synth.{args.kind}-*.parquet")):
        name = noisy.stem.removeprefix("synth.")
        rate, seed = re.fullmatch(rf"{re.escape(args.kind)}-([\d.]+)-s(\d+)", name).groups()
        run = args.grid / (f"ft-{name}-folds{args.folds}" if args.folds else f"ft-{name}/best.pt")
        data = read_table(noisy, columns=["pair_id", "image_id", "caption", "split", "noisy"], splits=["train"])
        wrong = pd.Series(truly_wrong(data, seed=args.synth_seed, size=64), index=data["pair_id"]) \
            if args.kind == "category" else None
        truth = data.set_index("pair_id")["noisy"]
        row = {"noise": rate, "seed": seed}
        for weight in weights:
            out = args.grid / f"{prefix}-{name}{f'-folds{args.folds}' if args.folds else ''}-w{weight:g}.parquet"
            score(noisy, out=out, model=ModelSource(checkpoint=run), detectors=[args.detector],
                  options={"tagger": str(args.tagger), "tagger_weight": weight, "scene_decoys": False})
            scores = pd.read_parquet(out).set_index("pair_id")
            noise_score = 1 - scores["reliability"]
            row[f"w{weight:g}"] = detection_metrics(truth.loc[scores.index], noise_score)["auroc"]
            if wrong is not None:  # the moved captions that are true of their new image left out
                judged = ~(truth.loc[scores.index] & ~wrong.loc[scores.index]).to_numpy()
                row[f"w{weight:g} wrong"] = detection_metrics(wrong.loc[scores.index][judged],
                                                              noise_score[judged])["auroc"]
            vote = -scores["tagger_support"].fillna(scores["tagger_support"].mean())
            row["tagger alone"] = detection_metrics(truth.loc[scores.index], vote)["auroc"]
        rows.append(row)
        print(" ".join(f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}"
                       for key, value in row.items()), flush=True)
    table = pd.DataFrame(rows)
    columns = [c for c in table.columns if c not in ("noise", "seed")]
    print("| noise | " + " | ".join(columns) + " |\n|---" * 1 + "|---" * len(columns) + "|")
    for rate, cells in table.groupby("noise"):  # each cell's AUROC by seed, then their mean
        print(f"| {rate} | " + " | ".join(" / ".join(f"{x:.3f}" for x in cells[c]) + f" (mean {cells[c].mean():.3f})"
                                         for c in columns) + " |")

if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
