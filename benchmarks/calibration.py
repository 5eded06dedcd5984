"""Noise-share estimates and calibrated labels against the truth, refitted offline from scores files.

    python benchmarks/calibration.py decoys NOISY.parquet --out DECOYS.parquet
    nctool score DECOYS.parquet ... --detector all --out DECOYS.scores.parquet   # same model as the data's
    python benchmarks/calibration.py table --run SCORES.parquet NOISY.parquet DECOYS.scores.parquet [--run ...]

`decoys` writes the train split of a dataset with every caption moved to a row of another image (a random
cyclic shift of the rows; the rare row shifted onto a caption of its own image is dropped). Scoring that file
with the model that scored the data gives each detector's noise score of mismatched pairs. For `rrsitr` and
`similarity` this is what scoring would compute for decoys next to the data (a pair's loss reads only the
reference pool's images and captions, not how the pool is paired); `neighbors` and `siblings` judge a pair by
the other pairs of its file, so a file of decoys is a different context and they are left out of the decoy
columns.

`table` prints, per scored file and detector: the true noisy share, the stored estimate (the tied
mixture, calibration.noise_share) and calibration.decoy_share at tails 0.1 / 0.25 / 0.5, each with
its error in points, and the stored labels' shares, noisy precision and clean recall.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from nctool.detect.calibration import decoy_share
from nctool.schema import NOISE_SHARE_KEY, read_table, write_table

DECOY_DETECTORS = ("rrsitr", "similarity")  # whose noise score of a pair does not depend on the other pairs
TAILS = (0.1, 0.25, 0.5)


def noise_score(rows: pd.DataFrame, detector: str) -> np.ndarray:
    """The detector's noise score, the one its calibration fits (nctool.detect.detectors)."""
    if detector in ("rrsitr", "loss-gmm"):
        return np.log1p(rows["loss"].to_numpy())
    if detector == "similarity":
        return -rows["similarity"].to_numpy()
    return 1 - 2 * rows["reliability"].to_numpy()  # minus the cosine score s, reliability = (s + 1) / 2


def make_decoys(noisy: str, out: str, seed: int) -> None:
    rows = read_table(noisy)
    rows = rows[rows["split"] == "train"].reset_index(drop=True)
    order = np.random.default_rng(seed).permutation(len(rows))
    source = np.roll(order, -1)
    decoys = rows.copy()
    decoys.loc[order, "caption"] = rows["caption"].to_numpy()[source]
    mismatched = np.zeros(len(rows), dtype=bool)
    mismatched[order] = rows["image_id"].to_numpy()[source] != rows["image_id"].to_numpy()[order]
    write_table(decoys[mismatched].assign(noisy=True), out)


def table(runs: list[list[str]]) -> pd.DataFrame:
    out = []
    for scores_path, noisy_path, decoys_path in runs:
        scores = pq.read_table(scores_path)
        stored = json.loads(scores.schema.metadata[NOISE_SHARE_KEY.encode()])
        scores = scores.to_pandas()
        truth = read_table(noisy_path, columns=["pair_id", "noisy"]).set_index("pair_id")["noisy"]
        decoy_rows = pd.read_parquet(decoys_path)
        for detector in ("rrsitr", "similarity", "neighbors", "siblings"):
            rows = scores[scores["detector"] == detector]
            noisy = truth.loc[rows["pair_id"]].to_numpy().astype(bool)
            labels = rows["label"].to_numpy()
            share = noisy.mean()
            row = {"rate": round(share, 2), "detector": detector, "truth": share,
                   "tied": stored[detector]["estimate"], "tied err": 100 * (stored[detector]["estimate"] - share)}
            if detector in DECOY_DETECTORS:
                decoys = noise_score(decoy_rows[decoy_rows["detector"] == detector], detector)
                for tail in TAILS:
                    estimate = decoy_share(noise_score(rows, detector), decoys, tail=tail)
                    row[f"decoy {tail:g}"] = estimate["estimate"]
                    row[f"err {tail:g}"] = 100 * (estimate["estimate"] - share)
                    if tail == 0.25:
                        row["interval 0.25"] = f"[{estimate['low']:.3f}, {estimate['high']:.3f}]"
            row.update({f"{label} %": 100 * (labels == label).mean() for label in ("clean", "ambiguous", "noisy")})
            row["noisy precision"] = noisy[labels == "noisy"].mean() if (labels == "noisy").any() else np.nan
            row["clean recall"] = (labels[~noisy] == "clean").mean()
            out.append(row)
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    decoys = commands.add_parser("decoys")
    decoys.add_argument("noisy")
    decoys.add_argument("--out", required=True)
    decoys.add_argument("--seed", type=int, default=11)
    tables = commands.add_parser("table")
    tables.add_argument("--run", nargs=3, action="append", required=True,
                        metavar=("SCORES", "NOISY", "DECOY_SCORES"))
    args = parser.parse_args()
    if args.command == "decoys":
        make_decoys(args.noisy, args.out, args.seed)
    else:
        pd.set_option("display.width", 250)
        print(table(args.run).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
