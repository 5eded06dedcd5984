"""`nctool bench` and `nctool demo`: the train -> score -> filter -> retrain pipeline with a report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nctool.cli._ui import app, console, progress_bar, summary_table


def _show(report: dict) -> None:
    results = report["results"]
    summary_table("Test mR (mean over seeds)", [
        {"kind": r.kind, "noise": f"{r.noise_rate:.0%}", "method": r.method, "mR": r.mr,
         "± std": None if r.mr_std != r.mr_std else r.mr_std, "seeds": r.seeds} for r in results.itertuples()])
    detection = report["detection"]
    if len(detection):
        summary_table("Detection on the train split (noisy = positive)", [
            {"kind": r.kind, "noise": f"{r.noise_rate:.0%}", "detector": r.detector, "AUROC": r.auroc,
             "AUPRC": r.auprc, "F1": r.f1} for r in detection.itertuples() if r.noise_rate > 0])


@app.command()
def bench(
    data: Path = typer.Argument(..., help="Clean dataset Parquet (nctool schema) with train/val/test splits."),
    out: Path = typer.Option(..., "--out", help="Bench folder: data/, runs/, results.md, *.csv, *.png."),
    recipe: str = typer.Option("demo", "--recipe", help="Recipe for every training run."),
    rates: list[float] = typer.Option([0.2, 0.4, 0.6, 0.8], "--rate", help="Noise rates (repeatable)."),
    kinds: list[str] = typer.Option(["caption-shuffle"], "--kind", help="Noise kinds (repeatable)."),
    seeds: list[int] = typer.Option([3], "--seed", help="Training seeds (repeatable); paper: 3 13 25 42 65."),
    methods: list[str] = typer.Option(["vanilla", "rrsitr", "filtered", "oracle"], "--method",
                                      help="vanilla, rrsitr, filtered, oracle (repeatable)."),
    drop: list[str] = typer.Option(["noisy"], "--drop", help="Labels the filter drops before retraining."),
    overrides: list[str] = typer.Option([], "--set", help="Recipe override section.key=value (repeatable)."),
    device: Optional[str] = typer.Option(None, "--device"),
) -> None:
    """Benchmark retrieval before/after filtering and every detector's AUROC against ground truth."""
    from nctool.bench import run_bench

    with progress_bar() as progress:
        report = run_bench(data, out, recipe=recipe, rates=rates, kinds=kinds, seeds=seeds, methods=methods,
                           drop=drop, overrides=overrides, device=device, progress=progress)
    _show(report)
    console.print(f"report: {out / 'results.md'}; plots and CSVs in {out}")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Output folder."),
    images: int = typer.Option(600, "--images", help="Synthetic images (5 captions each)."),
    rate: float = typer.Option(0.4, "--rate", help="Caption-shuffle noise rate."),
    seed: int = typer.Option(3, "--seed"),
    overrides: list[str] = typer.Option([], "--set", help="Demo recipe override section.key=value (repeatable)."),
) -> None:
    """The whole pipeline on embedded synthetic data: synth -> inject -> train -> score -> filter -> retrain."""
    from nctool.demo import run_demo

    with progress_bar() as progress:
        report = run_demo(out, images=images, rate=rate, seed=seed, overrides=overrides, progress=progress)
    _show(report)
    console.print(report["explanation"])
