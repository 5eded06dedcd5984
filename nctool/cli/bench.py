"""`nctool bench` and `nctool demo`: the train -> score -> filter -> retrain pipeline with a report."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from nctool.cli._ui import app, console, progress_bar, summary_table
from nctool.config import load_recipe, shipped_recipes
from nctool.data.noise import KINDS
from nctool.detect.detectors import detector_names
from nctool.report.bench import METHODS
from nctool.schema import LABELS

Method = Enum("Method", {name: name for name in METHODS}, type=str)
NoiseKind = Enum("NoiseKind", {name: name for name in KINDS}, type=str)
Detector = Enum("Detector", {name: name for name in detector_names()}, type=str)
Label = Enum("Label", {name: name for name in LABELS}, type=str)

RecipeOption = Annotated[str, typer.Option(help=f"Recipe TOML path or shipped name ({', '.join(shipped_recipes())}).")]
OverridesOption = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Recipe override section.key=value (repeatable).")]


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
    data: Annotated[Path, typer.Argument(help="Clean dataset Parquet (nctool schema) with train/val/test splits.")],
    out: Annotated[Path, typer.Option(help="Bench folder: data/, runs/, results.md, *.csv, *.png.")],
    recipe: RecipeOption = "demo",
    rates: Annotated[Optional[list[float]], typer.Option("--rate", help="Noise rates (repeatable); "
                                                         "default 0.2 0.4 0.6 0.8.")] = None,
    kinds: Annotated[Optional[list[NoiseKind]], typer.Option("--kind", help="Noise kinds (repeatable); "
                                                             "default caption-shuffle.")] = None,
    seeds: Annotated[Optional[list[int]], typer.Option("--seed", help="Training seeds (repeatable); default 3; "
                                                       "paper: 3 13 25 42 65.")] = None,
    methods: Annotated[Optional[list[Method]], typer.Option("--method", help="Methods (repeatable); "
                                                            "default all.")] = None,
    detectors: Annotated[Optional[list[Detector]], typer.Option("--detector", help="Detectors scored on each "
                                                                "RRSITR run (repeatable); default all.")] = None,
    drop: Annotated[Optional[list[Label]], typer.Option(help="Labels the filter drops before retraining "
                                                        "(repeatable); default noisy.")] = None,
    overrides: OverridesOption = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 (default: CUDA if present).")] = None,
    keep_last: Annotated[bool, typer.Option("--keep-last/--drop-last", help=(
        "Keep each finished run's last.pt (resume file with the optimizer state), or delete it once the run's "
        "results.json is written (best.pt stays)."))] = True,
) -> None:
    """Benchmark retrieval before/after filtering and every detector's AUROC against ground truth."""
    from nctool.report.bench import run_bench

    chosen = load_recipe(recipe, overrides or [])
    with progress_bar() as progress:
        report = run_bench(data, out_dir=out, recipe=chosen, rates=rates or (0.2, 0.4, 0.6, 0.8),
                           kinds=[k.value for k in kinds or []] or ("caption-shuffle",), seeds=seeds or (3,),
                           methods=[m.value for m in methods or []] or METHODS,
                           detectors=[d.value for d in detectors or []] or None,
                           drop=[label.value for label in drop or []] or ("noisy",), device=device,
                           progress=progress, keep_last=keep_last)
    _show(report)
    console.print(f"report: {out / 'results.md'}; plots and CSVs in {out}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/demo"),
    images: Annotated[int, typer.Option(help="Synthetic images (5 captions each).")] = 600,
    rate: Annotated[float, typer.Option(help="Caption-shuffle noise rate.")] = 0.4,
    seed: Annotated[int, typer.Option(help="Seed of the data and the training runs.")] = 3,
    base_images: Annotated[int, typer.Option(help="Synthetic images of the pretrained base's corpus "
                                             "(another seed, a third of the classes left out).")] = 1000,
    from_scratch: Annotated[bool, typer.Option(help="Train every model from random init (the `demo` recipe, "
                                               "InfoNCE warm-up) instead of fine-tuning a pretrained base "
                                               "(the `finetune` recipe).")] = False,
    overrides: OverridesOption = None,
) -> None:
    """The whole pipeline on embedded synthetic data: synth -> inject -> train -> score -> filter -> retrain."""
    from nctool.report.demo import base_recipe, run_demo

    extra = overrides or []
    chosen = load_recipe("demo" if from_scratch else "finetune", extra)
    base = None if from_scratch else base_recipe(extra)  # the pretrained base's (nctool.report.demo.BASE_OVERRIDES)
    with progress_bar() as progress:
        report = run_demo(out, recipe=chosen, base_recipe=base, images=images, base_images=base_images, rate=rate,
                          seed=seed, progress=progress)
    _show(report)
    console.print(report["explanation"])
