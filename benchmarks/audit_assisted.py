"""The audit's share with the detector's help against the audit alone and the decoys alone (issue 17).

    .venv/bin/python benchmarks/labels_from_arrays.py GRID [GRID ...] --base BASE.pt      # captures GRID/arrays/ once
    .venv/bin/python benchmarks/audit_assisted.py GRID [GRID ...] [--decisions 50 100 200] [--audits 300]

For each cell of --kind and model whose scores `labels_from_arrays.py` captured (GRID/arrays/), and each of
rrsitr, similarity and rrsitr-attributes: `decoy_calibration` states the share and each pair's
noisy_probability from the captured scores; then --audits uniform samples of each size in --decisions stand
for a curator's audit (decisions = the truth). Per model and sample size, over every cell and detector: the
mean absolute error (points), how often it is within 3 points, how often the 90 % interval holds the truth and
its mean width, for the audit alone (`audit_share`: Wilson) and with the detector's help (`assisted_share`);
and the decoys' own share error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from labels_from_arrays import captured_cells

from nctool.curate.review.audit import assisted_share
from nctool.detect.calibration import decoy_calibration
from nctool.metrics import wilson_interval

DETECTORS = ["rrsitr", "similarity", "rrsitr-attributes"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grids", type=Path, nargs="+")
    parser.add_argument("--decisions", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--audits", type=int, default=300)
    parser.add_argument("--kind", default="caption-shuffle")
    args = parser.parse_args()
    rows = []
    for _, _, model, arrays, noisy in captured_cells(args.grids, args.kind):
        share = noisy.mean()
        for detector in [d for d in DETECTORS if f"{d}.x" in arrays.files]:
            groups = arrays["groups"]
            stated = decoy_calibration(arrays[f"{detector}.x"], arrays[f"{detector}.decoys"], groups, groups)
            if stated.share is None:
                continue
            rng = np.random.default_rng(0)
            for n in args.decisions:
                for _ in range(args.audits):
                    chosen = rng.choice(len(noisy), n, replace=False)
                    found = int(noisy[chosen].sum())
                    low, high = wilson_interval(found, n, level=0.9, population=len(noisy))
                    helped = assisted_share(noisy[chosen], stated.noisy_probability, chosen, level=0.9)
                    rows.append({"model": model, "decisions": n, "decoys_error": abs(stated.share - share),
                                 "audit_error": abs(found / n - share), "audit_holds": low <= share <= high,
                                 "audit_width": high - low, "helped_error": abs(helped["estimate"] - share),
                                 "helped_holds": helped["low"] <= share <= helped["high"],
                                 "helped_width": helped["high"] - helped["low"]})
    table = pd.DataFrame(rows)
    for kind in ("decoys", "audit", "helped"):
        table[f"{kind}_within_3"] = table[f"{kind}_error"] <= 0.03
    points = [c for c in table if c.endswith(("error", "width"))]
    table[points] *= 100
    with pd.option_context("display.width", 200):
        print(table.groupby(["decisions", "model"]).mean().round(3).to_string())


if __name__ == "__main__":
    main()
