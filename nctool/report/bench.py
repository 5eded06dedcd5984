"""`nctool bench`: retrieval before and after cleaning, and detection quality, in one run.

For every noise kind, rate and seed it runs, on the same noisy file:
  vanilla   plain InfoNCE on the noisy pairs (the baseline everyone compares to)
  rrsitr    the recipe's RRSITR training on the noisy pairs; its best checkpoint is then
  scored    by every detector on the train split, on the same embeddings (AUROC/AUPRC vs truth)
  filtered  RRSITR retrained on the pairs the rrsitr detector did not flag (`drop` labels)
  oracle    plain InfoNCE on only the truly clean pairs (the ceiling)
and reports test mR of each method. Each run folder is kept; a run whose results.json exists is
reused, so an interrupted bench continues where it stopped (`keep_last=False` deletes a finished
run's last.pt, the resume file that holds the optimiser state and weighs about three best.pt). `bench.json` records what
the runs were made from (bench_identity: the clean data's fingerprint, the resolved recipe, the noise seed and the
filter's labels): a folder whose runs were made from anything else is refused, never reused. Outputs in `out_dir`:
results.csv / results.md (mR per method), detection.csv (per detector), and PNG plots.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from nctool.config import Recipe
from nctool.curate.filtering import filter_file, read_scores
from nctool.data.noise import KINDS, inject
from nctool.detect.detectors import detector_names
from nctool.errors import NctoolError
from nctool.metrics import DETECTION_METRICS, detection_table
from nctool.progress import Progress, silent
from nctool.schema import (
    atomic_path,
    check_output,
    dataset_fingerprint,
    image_root,
    iter_batches,
    read_table,
    write_json,
    write_table,
)

# torch and matplotlib (scoring, train, checkpoint, losses, plots) are imported where they are used:
# `nctool bench --help` reads METHODS from here and should not wait for them.
METHODS = ("vanilla", "rrsitr", "filtered", "oracle")
IDENTITY = "bench.json"  # in the bench folder: bench_identity of the runs there


def run_bench(data_path: str | Path, *, out_dir: str | Path, recipe: Recipe,
              rates: Sequence[float] = (0.2, 0.4, 0.6, 0.8), kinds: Sequence[str] = ("caption-shuffle",),
              seeds: Sequence[int] = (3,), methods: Sequence[str] = METHODS, detectors: Sequence[str] | None = None,
              drop: Sequence[str] = ("noisy",), noise_seed: int = 42, device: str | None = None,
              progress: Progress | None = None, keep_last: bool = True) -> dict:
    """Run the benchmark grid and write its report; returns {"results", "detection", "files"}.

    Parameters
    ----------
    data_path
        A clean dataset with train/val/test splits.
    out_dir
        Bench folder: data/ (noised files), runs/ (one per method, rate and seed), results.md,
        CSVs and plots. Finished runs found there are reused when bench.json says they were made from
        this data, recipe, noise seed and drop (bench_identity); a folder of other runs is refused.
    recipe
        The recipe every run derives from (each run sets only `loss.kind` and `train.seed`).
    rates, kinds, seeds, methods
        The grid: noise rates, noise kinds (nctool.data.noise.KINDS), training seeds, methods (METHODS).
    detectors
        Detectors scored on each RRSITR run (default: every registered one).
    drop
        Labels the `filtered` method drops before retraining.
    noise_seed
        Seed of the injected noise (42 as the reference benchmark).
    device, progress
        As for nctool.model.train.train.
    keep_last
        Keep each finished run's last.pt. False deletes it once the run's results.json is written
        (a finished run is reused by its results.json; best.pt, which scoring and fine-tuning
        read, stays), so the bench holds one checkpoint per run instead of two.
    """
    from nctool.detect.measure import ModelSource
    from nctool.detect.score import score

    progress = progress or silent
    out_dir = check_output(out_dir, data_path, folder=True)
    detectors = tuple(detectors or detector_names())
    unknown = [m for m in methods if m not in METHODS] + [k for k in kinds if k not in KINDS]
    if unknown:
        raise NctoolError(f"bench: unknown method or noise kind {unknown}; methods: {', '.join(METHODS)}; "
                          f"kinds: {', '.join(KINDS)}")
    tags = [f"{rate:.2f}" for rate in rates]
    if len(set(tags)) < len(tags):
        raise NctoolError(f"--rate {' '.join(map(str, rates))}: two rates share a run folder (named by the rate "
                          f"to 2 decimals); give rates that differ in the first two decimals")
    clean = read_table(data_path)
    root = image_root(data_path)
    fresh = _claim(out_dir, bench_identity(clean, recipe, noise_seed=noise_seed, drop=drop), data_path)
    results, detection = [], []
    grid = [(kind, rate, seed) for kind in kinds for rate in rates for seed in seeds]
    for done, (kind, rate, seed) in enumerate(grid):
        progress(done, len(grid), "bench")
        tag = f"{kind}-{rate:.2f}"
        noisy_path = out_dir / "data" / f"{tag}.parquet"
        if fresh or not noisy_path.exists():
            frame = inject(clean, rate, kind, seed=noise_seed)[0] if rate > 0 else clean.assign(noisy=False)
            write_table(frame, noisy_path, image_root=root)
        seeded = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, seed=seed))

        def run(method: str, data: Path, objective: str) -> dict:
            return train_once(data, out_dir / "runs" / tag / f"{method}-s{seed}",
                               dataclasses.replace(seeded, loss=dataclasses.replace(seeded.loss, kind=objective)),
                               device, progress, keep_last)

        row = {"kind": kind, "noise_rate": rate, "seed": seed}
        if "vanilla" in methods:
            results.append({**row, "method": "vanilla", **run("vanilla", noisy_path, "infonce")})
        if "rrsitr" in methods or "filtered" in methods:
            rrsitr_dir = out_dir / "runs" / tag / f"rrsitr-s{seed}"
            results.append({**row, "method": "rrsitr", **run("rrsitr", noisy_path, "rrsitr")})
            scores_path = rrsitr_dir / "scores.parquet"
            if not scores_path.exists() or _detectors_of(scores_path) != set(detectors):
                score(noisy_path, model=ModelSource(checkpoint=rrsitr_dir / "best.pt"), out=scores_path,
                      detectors=detectors,
                      device=device, progress=progress)
            detection += _detection_rows(noisy_path, scores_path, rrsitr_dir, row, rate > 0)
            if "filtered" in methods and rate > 0:
                kept_path = rrsitr_dir / "kept.parquet"
                if not kept_path.exists():
                    filter_file(noisy_path, scores_path, out=kept_path, drop=drop, detector="rrsitr")
                kept_train = int((read_table(kept_path, columns=["pair_id", "split"])["split"] == "train").sum())
                if kept_train < recipe.train.batch_size:  # nothing left to retrain on: report, do not fail
                    results.append({**row, "method": "filtered", "mr": float("nan"),
                                    "note": f"filter kept {kept_train} train pairs, fewer than one batch"})
                else:
                    results.append({**row, "method": "filtered", **run("filtered", kept_path, "rrsitr")})
        if "oracle" in methods and rate > 0:
            oracle_path = out_dir / "data" / f"{tag}.oracle.parquet"
            if fresh or not oracle_path.exists():
                frame = read_table(noisy_path)
                write_table(frame[~frame["noisy"]], oracle_path, image_root=root)
            results.append({**row, "method": "oracle", **run("oracle", oracle_path, "infonce")})
    progress(len(grid), len(grid), "bench")
    return _write_report(pd.DataFrame(results), pd.DataFrame(detection), out_dir)


def bench_identity(clean: pd.DataFrame, recipe: Recipe, *, noise_seed: int, drop: Sequence[str]) -> dict:
    """What a bench's runs are made from, as bench.json keeps it: a folder's runs are reused only for this.

    The clean data's fingerprint (nctool.schema.dataset_fingerprint), the resolved recipe (every
    setting; each run sets its seed and loss.kind from its folder's name), the noise seed and the
    labels the filter drops. The grid (rates, kinds, seeds, methods) only picks run folders, and the
    detectors only the scores, which are made again when they differ.
    """
    identity = {"data": dataset_fingerprint(clean), "recipe": recipe.to_dict(), "noise_seed": noise_seed,
                "drop": sorted(drop)}
    return json.loads(json.dumps(identity))  # as bench.json reads back


def _claim(out_dir: Path, identity: dict, data_path) -> bool:
    """Record `identity` as the folder's; True when it is new there (no earlier file of the folder is reused).

    A folder holding a run made from something else (or by an nctool that kept no record) is refused.
    """
    from nctool.model.train import RUN_FILES  # imports torch

    try:
        held = json.loads((out_dir / IDENTITY).read_text())
    except (OSError, ValueError):
        held = None
    if held == identity:
        return False
    if any(any((out_dir / "runs").glob(f"*/*/{name}")) for name in RUN_FILES):
        raise NctoolError(f"--out {out_dir}: {_difference(held, identity, data_path)}; choose another --out, or give "
                          f"the {'data' if held and held.get('data') != identity['data'] else 'settings'} it was "
                          f"made with to continue it")
    write_json(identity, out_dir / IDENTITY)
    return True


def _difference(held: dict | None, identity: dict, data_path) -> str:
    """What the runs of a bench folder were made from that this bench is not, in words."""
    from nctool.model.train import _first_difference

    if not isinstance(held, dict):
        return "holds bench runs without a record of the data and recipe they were made from (an older nctool)"
    if held.get("data") != identity["data"]:
        return f"holds a bench of another dataset than {data_path} (its fingerprint differs)"
    if held.get("recipe") != identity["recipe"]:
        try:
            change = _first_difference(Recipe.from_dict(identity["recipe"], "recipe"),
                                       Recipe.from_dict(held["recipe"], f"{IDENTITY} (its recipe)"))
        except (NctoolError, KeyError):
            change = "its recipe is not this one"
        return f"holds a bench of another recipe ({change})"
    if held.get("drop") != identity["drop"]:
        return f"holds a bench whose filter dropped {', '.join(map(str, held.get('drop') or []))}, not " \
               f"{', '.join(identity['drop'])}"
    return f"holds a bench with noise seed {held.get('noise_seed')}, not {identity['noise_seed']}"


def _detectors_of(scores_path: Path) -> set[str]:
    """The detectors a scores file holds (its detector column only)."""
    return {name for batch in iter_batches(scores_path, columns=["detector"], required={})
            for name in batch["detector"]}


def train_once(data: Path, run_dir: Path, recipe: Recipe, device: str | None, progress: Progress | None,
               keep_last: bool) -> dict:
    """Train in `run_dir` (continue an interrupted run, or reuse a finished one: its results.json) and
    return its test recalls; without `keep_last`, a finished run's last.pt goes."""
    from nctool.model.train import train

    done = run_dir / "results.json"
    if not done.exists():
        train(data, out_dir=run_dir, recipe=recipe, resume=(run_dir / "last.pt").exists(), device=device,
              progress=progress)
    summary = json.loads(done.read_text())
    if not keep_last:
        (run_dir / "last.pt").unlink(missing_ok=True)
    return {"mr": summary["test"]["mr"], "rsum": summary["test"]["rsum"], "best_epoch": summary["best_epoch"],
            "run": str(run_dir)}


def _detection_rows(noisy_path: Path, scores_path: Path, run_dir: Path, row: dict, plot: bool) -> list[dict]:
    """Per-detector AUROC/AUPRC/F1 against the ground truth, plus the loss histogram and ROC/PR plots."""
    from nctool.model.checkpoint import checkpoint_recipe, read_checkpoint
    from nctool.model.losses import recipe_thresholds
    from nctool.report import plots

    truth = read_table(noisy_path, columns=["pair_id", "noisy"]).set_index("pair_id")["noisy"]
    scores = read_scores(scores_path)
    rows = [{**row, "detector": found["detector"], **{key: found[key] for key in DETECTION_METRICS}}
            for found in detection_table(scores, truth)]
    if plot and "rrsitr" in set(scores["detector"]):
        noise_scores = {name: 1 - part["reliability"].to_numpy()
                        for name, part in scores.groupby("detector", sort=False)}
        rrsitr = scores[scores["detector"] == "rrsitr"]
        noisy = truth.loc[rrsitr["pair_id"]].to_numpy(dtype=bool)
        recipe = checkpoint_recipe(read_checkpoint(run_dir / "best.pt"), run_dir / "best.pt")
        g1, g2 = recipe_thresholds(recipe.loss, recipe.train.batch_size)
        plots.loss_histogram(rrsitr["loss"].to_numpy(), noisy, g1, g2, run_dir / "loss_histogram.png",
                             title=f"Per-pair loss, {row['kind']} {row['noise_rate']:.0%}")
        # every detector's rows come in the same pair order (scoring sorts by pair_id per detector)
        plots.roc_pr_curves(noisy, noise_scores, run_dir / "roc_pr.png",
                            title=f"Detection, {row['kind']} {row['noise_rate']:.0%}")
    return rows


def _write_report(results: pd.DataFrame, detection: pd.DataFrame, out_dir: Path) -> dict:
    from nctool.report import plots

    files = []
    summary = results.groupby(["kind", "noise_rate", "method"], sort=False)["mr"].agg(["mean", "std", "count"]) \
        .reset_index().rename(columns={"mean": "mr", "std": "mr_std", "count": "seeds"})
    det_summary = detection.groupby(["kind", "noise_rate", "detector"], sort=False)[["auroc", "auprc", "f1"]] \
        .agg(["mean", "std"]) if len(detection) else pd.DataFrame()
    if len(det_summary):
        det_summary.columns = [a if b == "mean" else f"{a}_std" for a, b in det_summary.columns]
        det_summary = det_summary.reset_index()
    for name, frame in (("results.csv", results), ("results_summary.csv", summary), ("detection.csv", detection),
                        ("detection_summary.csv", det_summary)):
        if len(frame):
            with atomic_path(out_dir / name) as tmp:
                frame.to_csv(tmp, index=False)
            files.append(out_dir / name)
    with atomic_path(out_dir / "results.md") as tmp:
        tmp.write_text(_markdown(summary, det_summary))
    files.append(out_dir / "results.md")
    for kind, part in summary.groupby("kind"):
        files.append(plots.mr_vs_noise(part, out_dir / f"mr_vs_noise_{kind}.png", title=f"Test mR vs noise ({kind})"))
    if len(det_summary):
        for kind, part in det_summary[det_summary["noise_rate"] > 0].groupby("kind"):
            files.append(plots.detection_vs_noise(part, out_dir / f"detection_vs_noise_{kind}.png",
                                                  title=f"Detection vs noise ({kind})"))
    return {"results": summary, "detection": det_summary, "files": [str(f) for f in files]}


def _markdown(summary: pd.DataFrame, detection: pd.DataFrame) -> str:
    """Two Markdown tables: mR per method (mean ± std over seeds) and detection per detector."""
    def cell(mean, std):
        if pd.isna(mean):
            return "n/a"
        return f"{mean:.2f}" if pd.isna(std) else f"{mean:.2f} ± {std:.2f}"

    lines = ["## Test mR (R@1/5/10 both ways, mean; ± std over seeds)", ""]
    wide = summary.assign(cell=[cell(m, s) for m, s in zip(summary["mr"], summary["mr_std"])]) \
        .pivot_table(index=["kind", "noise_rate"], columns="method", values="cell", aggfunc="first")
    wide = wide[[m for m in METHODS if m in wide.columns]]
    lines += [_md_table(wide.reset_index())]
    if len(detection):
        lines += ["", "## Detection on the train split (noisy = positive)", ""]
        det = detection.copy()
        for metric in ("auroc", "auprc", "f1"):
            det[metric] = [cell(m, s) for m, s in zip(det[metric], det[f"{metric}_std"])]
        lines += [_md_table(det[["kind", "noise_rate", "detector", "auroc", "auprc", "f1"]])]
    return "\n".join(lines) + "\n"


def _md_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join("" if pd.isna(v) else (f"{v:.0%}" if c == "noise_rate" else str(v))
                              for c, v in zip(frame.columns, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
