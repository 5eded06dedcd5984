"""What a detector states against same-scene decoys on category noise, against the truth (issues 17 and 19).

    .venv/bin/python benchmarks/scene_labels.py GRID [--detector rrsitr-attributes] [--tagger TAGGER]
        [--weight 0.5 ...]

For each category cell of a `benchmarks/finetuned_grid.sh` folder (synth.category-RATE-sSEED.parquet and
its fine-tuned ft-NAME/best.pt, in sample), scores the train pairs with --detector (default `attributes`)
and the default same-scene decoys, at each --tagger-weight (without --tagger: once, no tagger), and prints
per cell the random-decoy and same-scene shares against the truth, the clean set (pairs, stated and
measured share of noisy pairs) and the noisy set (pairs, stated and measured precision). Score files:
GRID/scene-DETECTOR-NAME-wW.parquet.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from nctool.detect.measure import ModelSource
from nctool.detect.score import score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", type=Path)
    parser.add_argument("--detector", default="attributes", choices=["attributes", "rrsitr-attributes"])
    parser.add_argument("--tagger", type=Path)
    parser.add_argument("--weight", type=float, action="append", dest="weights")
    args = parser.parse_args()
    weights = (args.weights or [0.5]) if args.tagger else [0.0]
    print("| noise | seed | weight | share (truth) | same-scene share | clean: pairs, stated / measured noisy "
          "| noisy: pairs, stated / measured precision |\n|---|---|---|---|---|---|---|")
    for noisy in sorted(args.grid.glob("synth.category-*.parquet")):
        name = noisy.stem.removeprefix("synth.")
        rate, seed = re.fullmatch(r"category-([\d.]+)-s(\d+)", name).groups()
        for weight in weights:
            options = {"tagger": str(args.tagger), "tagger_weight": weight} if args.tagger else {}
            summary = score(noisy, out=args.grid / f"scene-{args.detector}-{name}-w{weight:g}.parquet",
                            model=ModelSource(checkpoint=args.grid / f"ft-{name}/best.pt"),
                            detectors=[args.detector], options=options)
            [row] = summary["noise_share"]
            clean = (f"{row['clean']}, {100 * row['clean_contamination']:.1f} / {100 * row['clean_truth']:.1f} %"
                     if row.get("clean") and row.get("clean_contamination") is not None else "none")
            flagged = (f"{row['noisy']}, {row['noisy_precision']:.2f} / {row['noisy_truth']:.2f}"
                       if row.get("noisy") and row.get("noisy_precision") is not None else "none")
            print(f"| {rate} | {seed} | {weight:g} | {row['estimate']:.3f} ({row['truth']:.3f}) "
                  f"| {row['scene_estimate']:.3f} | {clean} | {flagged} |", flush=True)


if __name__ == "__main__":
    main()
