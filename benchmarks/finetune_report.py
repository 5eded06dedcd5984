"""Markdown tables of a finished `benchmarks/finetune.py` run (issue 9): retrieval, detection, labels, noise share.

Usage:
    .venv/bin/python benchmarks/finetune_report.py DIR [DIR ...]

Each DIR is a finetune.py --out folder (DIR/bench/runs/KIND-RATE/METHOD-sSEED/results.json and
rrsitr-s*/scores.parquet; DIR/zero-shot/KIND-RATE.scores.parquet). Prints:
1. test mR per noise kind, rate and method: mean ± std over the seeds found (n seeds);
2. detection AUROC / AUPRC per detector: the fine-tuned RRSITR models (mean ± std over seeds) and
   the zero-shot base;
3. label shares, noisy precision and clean recall per detector (fine-tuned, mean over seeds);
4. each detector's noise-share estimate (scores metadata) against the true share.
"""

import json
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from nctool.curate.filtering import read_scores
from nctool.metrics import detection_table, label_table
from nctool.report.bench import _md_table  # the bench report's own Markdown tables
from nctool.schema import NOISE_SHARE_KEY, read_table


def _tag(folder: Path) -> tuple[str, float]:
    kind, rate = folder.name.rsplit("-", 1)
    return kind, float(rate)


def _truth(noisy_file: Path) -> pd.Series:
    return read_table(noisy_file, columns=["pair_id", "noisy"]).set_index("pair_id")["noisy"]


def _scored(scores: Path, noisy_file: Path, source: str, **row) -> tuple[list, list, list]:
    truth, table = _truth(noisy_file), read_scores(scores)
    detection = [{**row, "source": source, **found} for found in detection_table(table, truth)]
    labels = [{**row, "source": source, **found} for found in label_table(table, truth)]
    meta = pq.read_schema(scores).metadata or {}
    shares = json.loads(meta.get(NOISE_SHARE_KEY.encode(), b"{}"))
    share_rows = [{**row, "source": source, "detector": name, "estimate": s["estimate"],
                   "truth": float(truth.loc[table.loc[table["detector"] == name, "pair_id"]].mean())}
                  for name, s in shares.items()]
    return detection, labels, share_rows


def collect(dirs: list[Path]) -> dict[str, pd.DataFrame]:
    results, detection, labels, shares = [], [], [], []
    for out in dirs:
        for run in sorted((out / "bench" / "runs").glob("*/*-s*")):
            if not (run / "results.json").exists():
                continue
            kind, rate = _tag(run.parent)
            method, seed = run.name.rsplit("-s", 1)
            summary = json.loads((run / "results.json").read_text())
            results.append({"kind": kind, "noise_rate": rate, "method": method, "seed": int(seed),
                            "mr": summary["test"]["mr"]})
            if method == "rrsitr" and rate > 0 and (run / "scores.parquet").exists():
                found = _scored(run / "scores.parquet", out / "bench" / "data" / f"{run.parent.name}.parquet",
                                "fine-tuned", kind=kind, noise_rate=rate, seed=int(seed))
                detection += found[0]
                labels += found[1]
                shares += found[2]
        for scores in sorted((out / "zero-shot").glob("*.scores.parquet")):
            kind, rate = _tag(Path(scores.name.removesuffix(".scores.parquet")))
            found = _scored(scores, scores.with_name(scores.name.replace(".scores", "")), "zero-shot base",
                            kind=kind, noise_rate=rate, seed=0)
            detection += found[0]
            labels += found[1]
            shares += found[2]
    return {name: pd.DataFrame(rows) for name, rows in
            (("results", results), ("detection", detection), ("labels", labels), ("shares", shares))}


def _cell(values: pd.Series, digits: int) -> str:
    return f"{values.mean():.{digits}f}" + (f" ± {values.std():.{digits}f}" if len(values) > 1 else "") + \
        f" ({len(values)})"


def markdown(tables: dict[str, pd.DataFrame]) -> str:
    out = []
    res = tables["results"]
    if len(res):
        wide = res.groupby(["kind", "noise_rate", "method"])["mr"].apply(lambda v: _cell(v, 2)).unstack("method")
        wide = wide[[m for m in ("vanilla", "rrsitr", "filtered", "oracle") if m in wide.columns]]
        out += ["### Test mR, mean ± std over seeds (n)", "", _md_table(wide.reset_index()), ""]
    det = tables["detection"]
    if len(det):
        for metric in ("auroc", "auprc"):
            wide = det.groupby(["kind", "noise_rate", "source", "detector"])[metric].apply(lambda v: _cell(v, 3)) \
                .unstack("detector").reset_index()
            out += [f"### Detection {metric.upper()} on the train split (n)", "", _md_table(wide), ""]
    lab = tables["labels"]
    if len(lab):
        lab = lab[lab["source"] == "fine-tuned"]
        share = lab.pivot_table(index=["kind", "noise_rate", "detector"], columns="label", values="share",
                                aggfunc="mean")
        prec = lab[lab["label"] == "noisy"].groupby(["kind", "noise_rate", "detector"])["precision"].mean()
        rec = lab[lab["label"] == "clean"].groupby(["kind", "noise_rate", "detector"])["recall"].mean()
        table = pd.DataFrame({"clean / ambiguous / noisy": share.apply(
            lambda r: f"{r['clean']:.0%} / {r['ambiguous']:.0%} / {r['noisy']:.0%}", axis=1),
            "noisy precision": prec.round(2), "clean recall": rec.round(2)}).reset_index()
        out += ["### Labels of the fine-tuned models (mean over seeds)", "", _md_table(table), ""]
    sh = tables["shares"]
    if len(sh):
        sh = sh.assign(error=sh["estimate"] - sh["truth"])
        table = sh.groupby(["kind", "noise_rate", "source", "detector"]).agg(
            estimate=("estimate", "mean"), truth=("truth", "mean"), error=("error", "mean"),
            worst=("error", lambda e: e.abs().max())).round(3).reset_index()
        out += ["### Noise-share estimate against the truth (mean over seeds; worst = largest |error|)", "",
                _md_table(table), ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown(collect([Path(arg) for arg in sys.argv[1:]])))
