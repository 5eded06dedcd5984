"""Noise-share estimators side by side on the cells of `benchmarks/labels.py` (issue 17).

    .venv/bin/python benchmarks/share_estimators.py LAB_DIR --base BASE.pt [--seed 42 --seed 43 ...]

LAB_DIR is a `benchmarks/labels.py` output folder (its noisy files of --kind, and runs/ and folds/
where it ran with --finetune and --folds); BASE the base it was run with. Each cell is scored once more
per model (random decoys) while the pairs' and decoys' noise scores are captured from
`decoy_calibration`'s inputs; they are kept in LAB_DIR/arrays/ (a rerun reads them). Then, per (cell,
model, detector), the share from:

- `storey`: what `nctool score` states (Storey's bootstrap rule over the decoys' 5-95 % quantiles);
- `storey<=0.8`: the same rule over the 5-80 % quantiles (a fifth of the decoys above every cut);
- `patra-sen`: the least decoy weight under which the rest of the data's distribution is a
  distribution, within c log log n / sqrt(n), n = N M / (N + M), c = 0.05 (Patra and Sen, 2016).

Prints, per model and estimator, the mean and worst absolute error (points), the share of rows within
3 points and the mean signed error. Then the noisy set (estimated precision at least 0.95) cut with the
share `nctool score` states and with the bottom of its interval: its least and mean measured precision,
the rows below 0.9 and its mean recall, over the rows whose share is pinned.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

import nctool.detect.calibration as calibration
from nctool.detect.detectors import detector_names
from nctool.detect.measure import ModelSource
from nctool.detect.score import score
from nctool.schema import read_table


def captured_scores(noisy: Path, model: ModelSource, detectors: list[str]) -> dict:
    """Score `noisy` and return {detector: (x, decoys)}, "groups" and "pair_id" as decoy_calibration saw them."""
    seen, original = [], calibration.decoy_calibration

    def spy(x, decoys, groups, decoy_groups, **options):
        seen.append((np.asarray(x, float).copy(), np.asarray(decoys, float).copy(), np.asarray(groups).copy()))
        return original(x, decoys, groups, decoy_groups, **options)

    calibration.decoy_calibration = spy
    try:
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "scores.parquet"
            score(noisy, out=out, model=model, detectors=detectors, options={"scene_decoys": False})
            rows = pd.read_parquet(out, columns=["pair_id", "detector"])
    finally:
        calibration.decoy_calibration = original
    names = [name for name in dict.fromkeys(rows["detector"]) if name != "loss-gmm"]  # loss-gmm states no decoys
    first = rows[rows["detector"] == names[0]]["pair_id"].to_numpy()
    arrays = {"pair_id": first, "groups": seen[0][2]}
    for name, (x, decoys, _) in zip(names, seen, strict=True):
        arrays[f"{name}.x"], arrays[f"{name}.decoys"] = x, decoys
    return arrays


def storey(x: np.ndarray, decoys: np.ndarray, groups: np.ndarray, top: float) -> float:
    usable = (calibration.LAMBDAS <= top + 1e-9) & (len(decoys) * (1 - calibration.LAMBDAS)
                                                    >= calibration.MIN_DECOYS_ABOVE)
    resamples = calibration._image_resamples(groups, groups, calibration.BOOTSTRAPS, 0)
    return calibration._storey_share(x, decoys, resamples, usable, 0.9)[0]


def patra_sen(x: np.ndarray, decoys: np.ndarray, c: float = 0.05) -> float:
    """1 - the least clean weight g for which F_data - (1 - g) F_decoy is within the tolerance of a
    non-decreasing function in [0, g] (L2 over the data points), found by bisection."""
    n, m = len(x), len(decoys)
    points = np.sort(x)
    data_cdf = np.searchsorted(points, points, side="right") / n
    decoy_cdf = np.searchsorted(np.sort(decoys), points, side="right") / m
    n_eff = n * m / (n + m)
    tolerance = c * np.log(np.log(n_eff)) / np.sqrt(n_eff)
    low, high = 0.0, 1.0
    for _ in range(30):
        g = (low + high) / 2
        rest = data_cdf - (1 - g) * decoy_cdf
        distance = np.sqrt(np.mean((rest - IsotonicRegression(y_min=0.0, y_max=g).fit_transform(np.arange(n), rest))
                                   ** 2))
        low, high = (low, g) if distance <= tolerance else (g, high)
    return 1 - high


def noisy_set_rows(x: np.ndarray, decoys: np.ndarray, groups: np.ndarray, truth: np.ndarray, tag: dict) -> list[dict]:
    """The noisy set at the stated share and at the bottom of its interval, against the truth (none unpinned)."""
    stated = calibration.decoy_calibration(x, decoys, groups, groups)
    if stated.share is None or stated.share_interval[1] - stated.share_interval[0] > calibration.MAX_SHARE_WIDTH:
        return []
    rows = []
    for name, share in (("stated", stated.share), ("interval's bottom", stated.share_interval[0])):
        chosen = calibration.noisy_precisions(x, decoys, share) >= 0.95
        rows.append({**tag, "share": name, "precision": truth[chosen].mean() if chosen.any() else np.nan,
                     "recall": (truth & chosen).sum() / truth.sum()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lab", type=Path)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--seed", type=int, action="append")
    parser.add_argument("--kind", default="caption-shuffle")
    args = parser.parse_args()
    (args.lab / "arrays").mkdir(exist_ok=True)
    rows, noisy_sets = [], []
    for noisy in sorted(args.lab.glob("*.parquet")):
        match = re.fullmatch(r"(.+)-(\d\.\d\d)-s(\d+)", noisy.stem)
        if match is None or match[1] != args.kind or (args.seed and int(match[3]) not in args.seed):
            continue
        name = noisy.stem
        truth = read_table(noisy, columns=["pair_id", "noisy"]).set_index("pair_id")["noisy"]
        models = {"zero-shot": (ModelSource(model="nctool-tiny", pretrained=args.base, recipe="finetune"), ["all"]),
                  "fine-tuned": (ModelSource(checkpoint=args.lab / "runs" / name / "best.pt"), ["all"]),
                  "out-of-fold": (ModelSource(checkpoint=args.lab / "folds" / name),
                                  [d for d in detector_names() if d != "neighbors"])}
        for model_name, (model, detectors) in models.items():
            if model.checkpoint is not None and not Path(model.checkpoint).exists():
                continue  # labels.py ran this cell without --finetune or --folds
            cache = args.lab / "arrays" / f"{name}.{model_name}.npz"
            if not cache.exists():
                np.savez(cache, **captured_scores(noisy, model, detectors))
            arrays = np.load(cache, allow_pickle=True)
            noisy_share = truth.loc[arrays["pair_id"]].mean()
            labels = truth.loc[arrays["pair_id"]].to_numpy(bool)
            for detector in [key[:-2] for key in arrays.files if key.endswith(".x")]:
                x, decoys = arrays[f"{detector}.x"], arrays[f"{detector}.decoys"]
                noisy_sets += noisy_set_rows(x, decoys, arrays["groups"], labels, {"model": model_name})
                estimates = {"storey": storey(x, decoys, arrays["groups"], 0.95),
                             "storey<=0.8": storey(x, decoys, arrays["groups"], 0.8),
                             "patra-sen": patra_sen(x, decoys)}
                rows += [{"cell": name, "model": model_name, "detector": detector, "estimator": estimator,
                          "error": 100 * (value - noisy_share)} for estimator, value in estimates.items()]
            print(name, model_name, flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby(["model", "estimator"])["error"].agg(
        mean_abs=lambda e: e.abs().mean(), worst=lambda e: e.abs().max(), within_3=lambda e: (e.abs() <= 3).mean(),
        mean="mean", rows="size")
    print(summary.round(2).to_string())
    sets = pd.DataFrame(noisy_sets).groupby(["model", "share"]).agg(
        least_precision=("precision", "min"), mean_precision=("precision", "mean"),
        below_090=("precision", lambda p: int((p < 0.9).sum())), rows=("precision", "size"),
        mean_recall=("recall", "mean"))
    print(sets.round(3).to_string())


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
