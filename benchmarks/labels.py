"""What the decoy-calibrated labels state against the truth (issue 17), over noise kinds, rates and seeds.

Usage:
    .venv/bin/python benchmarks/labels.py CLEAN_DATA --base BASE.pt --out DIR
        [--kind caption-shuffle --rate 0.2 ... --seed 42 ...] [--finetune] [--folds K] [--no-scene-decoys]

For each kind, rate and noise seed: inject the noise into CLEAN_DATA (nctool.data.noise.inject), score
the train split with every detector zero-shot from BASE (nctool-tiny, `finetune` recipe: the base never
saw these pairs, so its scores are out of sample) and, with --finetune, also with a model fine-tuned
from BASE on that very noisy file (`nctool train --recipe finetune`, RRSITR: in sample) and, with
--folds K, with K such models trained on image-disjoint folds, each pair scored by the one that did
not train on it (`nctool train --folds K`: out of fold; neighbors left out). Prints one
row per (kind, rate, seed, model, detector): the stated noise share and interval against the truth,
the clean set's stated contamination against the measured one, the noisy set's stated precision
against the measured one and its recall (nctool.metrics.statement_table); then a summary per model
and detector. Everything stays in DIR (rerunning reuses what is there); the rows also go to
DIR/labels.csv.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from nctool.config import load_recipe
from nctool.curate.filtering import read_scores
from nctool.data.noise import inject
from nctool.detect.detectors import detector_names
from nctool.detect.measure import ModelSource
from nctool.detect.score import score
from nctool.metrics import statement_table
from nctool.model.train import train, train_folds
from nctool.schema import noise_statements, read_table, write_table


def rows_of(scores_path: Path, truth: pd.Series, tag: dict) -> list[dict]:
    """One row per detector: what it stated beside what holds (nctool.metrics.statement_table)."""
    rows = statement_table(read_scores(scores_path), noise_statements(scores_path), truth)
    for row in rows:  # the noisy set's recall: its truly noisy pairs among all noisy pairs
        row["noisy_recall"] = (row["noisy"] * row["noisy_truth"] / (row["truth"] * row["pairs"])
                               if row.get("noisy") and row["noisy_truth"] is not None else 0.0)
    return [{**tag, **row} for row in rows]


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model and detector (decoy-stated rows): worst share error, coverage, clean and noisy checks."""
    decoys = rows[rows["method"] == "decoys"].copy()
    decoys["share_error"] = decoys["estimate"] - decoys["truth"]
    decoys["covered"] = (decoys["low"] <= decoys["truth"]) & (decoys["truth"] <= decoys["high"])
    decoys["clean_gap"] = decoys["clean_truth"] - decoys["clean_contamination"]
    for kind, truth in (("clean", "clean_truth"), ("noisy", "noisy_truth")):  # "k/n": k of the n stated sets
        if f"{kind}_low" not in decoys:  # score files from before the noisy set's interval
            decoys[f"{kind}_low"] = decoys[f"{kind}_high"] = np.nan
        decoys[f"{kind}_covered"] = np.where(decoys[truth].notna() & decoys[f"{kind}_low"].notna(),
                                             (decoys[f"{kind}_low"] <= decoys[truth])
                                             & (decoys[truth] <= decoys[f"{kind}_high"]), np.nan)
    decoys["noisy_low"] = decoys["noisy_low"].astype(float)
    covered = lambda c: f"{int(c.sum())}/{int(c.notna().sum())}"  # noqa: E731
    return decoys.groupby(["model", "detector"]).agg(
        cells=("truth", "size"), worst_share_error=("share_error", lambda e: e.abs().max()),
        mean_share_error=("share_error", "mean"), coverage=("covered", "mean"),
        worst_clean_gap=("clean_gap", lambda g: g.abs().max()), worst_clean_truth=("clean_truth", "max"),
        clean_covered=("clean_covered", covered), least_noisy_precision=("noisy_truth", "min"),
        least_noisy_low=("noisy_low", "min"), noisy_covered=("noisy_covered", covered),
        mean_recall=("noisy_recall", "mean")).reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kind", action="append")
    parser.add_argument("--rate", action="append", type=float)
    parser.add_argument("--seed", action="append", type=int)
    parser.add_argument("--finetune", action="store_true")
    parser.add_argument("--folds", type=int)
    parser.add_argument("--no-scene-decoys", action="store_true",
                        help="cut the clean sets against random captions only")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    clean, rows = read_table(args.data), []
    for kind in args.kind or ["caption-shuffle"]:
        for rate in args.rate or [0.2, 0.4, 0.6, 0.8]:
            for seed in args.seed or [42]:
                name = f"{kind}-{rate:.2f}-s{seed}"
                noisy_path = args.out / f"{name}.parquet"
                if not noisy_path.exists():
                    write_table(inject(clean, rate, kind, seed=seed)[0], noisy_path)
                truth = read_table(noisy_path, columns=["pair_id", "noisy"]).set_index("pair_id")["noisy"]
                models = {"zero-shot": ModelSource(model="nctool-tiny", pretrained=args.base, recipe="finetune")}
                if args.finetune:
                    run = args.out / "runs" / name
                    if not (run / "best.pt").exists():
                        recipe = load_recipe("finetune", [f"model.pretrained={args.base}"])
                        train(noisy_path, out_dir=run, recipe=recipe)
                    models["fine-tuned"] = ModelSource(checkpoint=run / "best.pt")
                if args.folds:
                    folds_dir = args.out / "folds" / name
                    train_folds(noisy_path, out_dir=folds_dir, folds=args.folds,
                                recipe=load_recipe("finetune", [f"model.pretrained={args.base}"]))
                    models["out-of-fold"] = ModelSource(checkpoint=folds_dir)
                for model_name, model in models.items():
                    suffix = ".random" if args.no_scene_decoys else ""
                    scores_path = args.out / f"{name}.{model_name}{suffix}.scores.parquet"
                    if not scores_path.exists():
                        detectors = ["all"] if model_name != "out-of-fold" else [
                            name for name in detector_names() if name != "neighbors"]
                        score(noisy_path, out=scores_path, model=model, detectors=detectors,
                              options={"scene_decoys": not args.no_scene_decoys})
                    rows += rows_of(scores_path, truth, {"kind": kind, "rate": rate, "seed": seed,
                                                        "model": model_name})
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "labels.csv", index=False)
    table = table[["kind", "rate", "seed", "model", "detector", "method", "truth", "estimate", "low", "high", "clean",
                   "clean_contamination", "clean_truth", "noisy", "noisy_precision", "noisy_truth", "noisy_recall"]]
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
        print()
        print(summary(table).to_string(index=False))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
