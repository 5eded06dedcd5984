"""What `nctool score` states against the truth, from scores captured once per cell (issue 17).

    .venv/bin/python benchmarks/labels_from_arrays.py GRID [GRID ...] --base DEMO/base/run/best.pt

Each GRID is a `benchmarks/finetuned_grid.sh` folder (noisy files synth.KIND-RATE-sSEED.parquet, fine-tuned
runs ft-NAME/best.pt, fold runs ft-NAME-folds3/) or a folder of noisy files alone (zero-shot only). Every
cell is scored by the base (zero-shot) and by the runs that exist, while the pairs' and decoys' noise
scores are captured from `decoy_calibration`'s inputs (random decoys; kept in GRID/arrays/, which a
rerun reads). The labels and statements are then made from those arrays by the code at hand, so a
change to the calibration is measured on the same scores. Prints, per model and rate, the clean sets:
the cells x detectors that state one, its mean size and recall of the clean pairs, the worst gap between
measured and stated contamination (points), the worst measured contamination, the sets measured
above the asked 5 % + 1 point, and how often the stated interval holds the measured contamination.
Then per model and detector, the share and the noisy set: the worst and mean absolute share error
(points), how often the share's interval holds the truth, the least measured precision of a noisy set,
how often its stated interval holds it, and the mean recall of the noisy pairs.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd
from share_estimators import captured_scores

from nctool.detect.calibration import decoy_calibration
from nctool.detect.measure import ModelSource
from nctool.schema import read_table

DETECTORS = ["rrsitr", "similarity", "siblings", "attributes", "rrsitr-attributes"]


def models(grid: Path, name: str, base: Path) -> dict[str, ModelSource]:
    """The models that score cell `name` of `grid`: the base, and the grid's runs that exist."""
    found = {"zero-shot": ModelSource(model="nctool-tiny", pretrained=base, recipe="finetune")}
    if (grid / f"ft-{name}" / "best.pt").exists():
        found["fine-tuned"] = ModelSource(checkpoint=grid / f"ft-{name}" / "best.pt")
    if (grid / f"ft-{name}-folds3").is_dir():
        found["out-of-fold"] = ModelSource(checkpoint=grid / f"ft-{name}-folds3")
    return found


def captured_cells(grids: list[Path], kind: str, base: Path | None = None):
    """Each (cell name, rate, model, captured arrays, truth per captured pair) of `grids`' noisy files of `kind`,
    once per (cell, model) however many grids hold the cell. With `base`, a cell's scores not captured yet are
    captured into GRID/arrays/ first; without it, only the captured ones are read."""
    seen = set()
    for grid in grids:
        (grid / "arrays").mkdir(exist_ok=True)
        for noisy in sorted(grid.glob(f"synth.{kind}-*.parquet")):
            name = noisy.stem.removeprefix("synth.")
            rate = float(re.fullmatch(rf"{re.escape(kind)}-([\d.]+)-s\d+", name)[1])
            truth = read_table(noisy, columns=["pair_id", "noisy"]).set_index("pair_id")["noisy"]
            for model in ("zero-shot", "fine-tuned", "out-of-fold"):
                cache = grid / "arrays" / f"{name}.{model}.npz"
                sources = models(grid, name, base) if base is not None and not cache.exists() else {}
                if model in sources:
                    np.savez(cache, **captured_scores(noisy, sources[model], DETECTORS))
                if (name, model) in seen or not cache.exists():
                    continue
                seen.add((name, model))
                arrays = np.load(cache, allow_pickle=True)
                yield name, rate, model, arrays, truth.loc[arrays["pair_id"]].to_numpy(bool)


def cell_rows(arrays, truth: np.ndarray, tag: dict) -> list[dict]:
    """One row per detector: the clean set decoy_calibration states from the captured scores, against the truth."""
    rows = []
    for detector in [key[:-2] for key in arrays.files if key.endswith(".x")]:
        groups = arrays["groups"]
        stated = decoy_calibration(arrays[f"{detector}.x"], arrays[f"{detector}.decoys"], groups, groups)
        summary, clean, noisy = stated.summary(), stated.labels == "clean", stated.labels == "noisy"
        rows.append({**tag, "detector": detector, "truth": truth.mean(), "share": summary["estimate"],
                     "share_low": summary["low"], "share_high": summary["high"], "noisy": int(noisy.sum()),
                     "precision": truth[noisy].mean() if noisy.any() else np.nan,
                     "precision_low": summary["noisy_low"], "precision_high": summary["noisy_high"],
                     "noisy_recall": (noisy & truth).sum() / truth.sum(), "clean": int(clean.sum()),
                     "stated": summary["clean_contamination"], "low": summary["clean_low"],
                     "high": summary["clean_high"], "measured": truth[clean].mean() if clean.any() else np.nan,
                     "recall": (clean & ~truth).sum() / (~truth).sum()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grids", type=Path, nargs="+")
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--kind", default="caption-shuffle")
    args = parser.parse_args()
    rows = []
    for name, rate, model, arrays, truth in captured_cells(args.grids, args.kind, args.base):
        rows += cell_rows(arrays, truth, {"cell": name, "rate": rate, "model": model})
    table = pd.DataFrame(rows)
    claimed = table[table["clean"] > 0].assign(gap=lambda t: 100 * (t["measured"] - t["stated"]),
                                               held=lambda t: t["measured"].between(t["low"], t["high"]))
    summary = claimed.groupby(["model", "rate"]).agg(
        sets=("clean", "size"), mean_pairs=("clean", "mean"), worst_gap=("gap", lambda g: g.abs().max()),
        worst_measured=("measured", "max"), over_6=("measured", lambda m: int((m > 0.06).sum())),
        interval_holds=("held", "sum"))
    cells = table.groupby(["model", "rate"])
    summary = summary.reindex(cells.size().index).fillna({"sets": 0, "over_6": 0, "interval_holds": 0})
    summary["of_rows"], summary["clean_recall"] = cells.size(), cells["recall"].mean()
    stated = table[table["share"].notna()].assign(
        error=lambda t: 100 * (t["share"] - t["truth"]).abs(),
        share_held=lambda t: (t["share_low"] <= t["truth"]) & (t["truth"] <= t["share_high"]),
        precision_held=lambda t: t["precision"].between(t["precision_low"], t["precision_high"]))
    shares = stated.groupby(["model", "detector"]).agg(
        cells=("error", "size"), worst_error=("error", "max"), mean_error=("error", "mean"),
        share_held=("share_held", "sum"), noisy_sets=("noisy", lambda n: int((n > 0).sum())),
        least_precision=("precision", "min"), precision_held=("precision_held", "sum"),
        noisy_recall=("noisy_recall", "mean"))
    with pd.option_context("display.width", 200):
        print(summary.round(3).to_string())
        print(shares.round(3).to_string())


if __name__ == "__main__":
    main()
