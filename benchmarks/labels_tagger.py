"""What `attributes --tagger` (or `rrsitr-attributes`) states against the truth, from the score files
`benchmarks/tagger.py` left in a grid.

    .venv/bin/python benchmarks/labels_tagger.py GRID [--kind caption-shuffle] [--detector rrsitr-attributes]

Per score file (in sample and, with `-foldsK` in its name, out of fold; each tagger weight): the stated noise
share (random decoys) against the truth and whether its interval covers it, the clean set's stated and
measured noise, and the noisy set's precision; then per model and weight the worst and mean share error, the
coverage, the worst clean gap and clean contamination, and the least noisy precision.
"""

import argparse
import glob
import re

import pandas as pd

from nctool.schema import noise_statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid")
    parser.add_argument("--kind", default="caption-shuffle")
    parser.add_argument("--detector", default="attributes", choices=["attributes", "rrsitr-attributes"])
    args = parser.parse_args()
    rows = []
    prefix = "tagger" if args.detector == "attributes" else args.detector  # as benchmarks/tagger.py names them
    for path in sorted(glob.glob(f"{args.grid}/{prefix}-{args.kind}-*-w*.parquet")):
        rate, seed, folds, weight = re.search(r"-([\d.]+)-s(\d+)(-folds\d+)?-w([\d.]+)\.parquet$", path).groups()
        stated = noise_statements(path)[args.detector]
        labels = pd.read_parquet(path, columns=["pair_id", "label"])
        truth = pd.read_parquet(f"{args.grid}/synth.{args.kind}-{rate}-s{seed}.parquet", columns=["pair_id", "noisy"])
        noisy = truth.set_index("pair_id")["noisy"].loc[labels["pair_id"]].to_numpy(bool)
        clean, flagged = (labels["label"].to_numpy() == label for label in ("clean", "noisy"))
        covered = stated.get("low") is not None and stated["low"] <= noisy.mean() <= stated["high"]
        rows.append({"noise": rate, "seed": seed, "model": "out of fold" if folds else "in sample", "weight": weight,
                     "share": stated.get("estimate"), "truth": noisy.mean(), "covered": covered,
                     "clean": clean.sum(), "clean stated": stated.get("clean_contamination"),
                     "clean measured": noisy[clean].mean() if clean.any() else None,
                     "noisy": flagged.sum(), "precision stated": stated.get("noisy_precision"),
                     "precision": noisy[flagged].mean() if flagged.any() else None})
    table = pd.DataFrame(rows).astype({"share": float, "clean stated": float, "clean measured": float,
                                       "precision": float})
    table["error"] = 100 * (table["share"] - table["truth"])
    table["clean gap"] = 100 * (table["clean measured"] - table["clean stated"])
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    print(table.round(3).to_string(index=False))
    by = table.groupby(["model", "weight"])
    print(pd.DataFrame({"worst |error|": by["error"].apply(lambda e: e.abs().max()),
                        "mean |error|": by["error"].apply(lambda e: e.abs().mean()), "covered": by["covered"].mean(),
                        "worst clean gap": by["clean gap"].max(), "worst clean measured": by["clean measured"].max(),
                        "least precision": by["precision"].min()}).round(3).to_string())


if __name__ == "__main__":
    main()
