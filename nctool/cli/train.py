"""`nctool train`: RRSITR (or InfoNCE) training from a recipe."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from nctool.cli._ui import app, console, console_err, progress_bar, summary_table
from nctool.config import load_recipe


@app.command()
def train(
    data: Path = typer.Argument(..., help="Dataset Parquet (nctool schema) with train/val/test splits."),
    out: Path = typer.Option(..., "--out", help="Run folder: config.json, metrics.jsonl, last.pt, best.pt."),
    recipe: str = typer.Option("demo", "--recipe", help="Recipe TOML path or shipped name (demo, rsitmd, rsicd, nwpu)."),
    overrides: list[str] = typer.Option([], "--set", help="Override any recipe key: section.key=value (repeatable)."),
    loss: Optional[str] = typer.Option(None, "--loss", help="rrsitr or infonce (= --set loss.kind=...)."),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    pretrained: Optional[str] = typer.Option(None, "--pretrained", help="open_clip tag or local checkpoint path."),
    image_root: Optional[Path] = typer.Option(None, "--image-root", help="Folder for relative image paths."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 (default: CUDA if present)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out exactly where it stopped."),
) -> None:
    """Train a retrieval model with the RRSITR loss (self-paced, robust to noisy pairs)."""
    from nctool.train import TrainingInterrupted, train as run_training

    flags = {"loss.kind": loss, "train.epochs": epochs, "train.batch_size": batch_size, "train.lr": lr,
             "train.seed": seed, "model.pretrained": None if pretrained is None else f'"{pretrained}"'}
    config = load_recipe(recipe, [*overrides, *(f"{k}={v}" for k, v in flags.items() if v is not None)])
    try:
        with progress_bar() as progress:
            result = run_training(data, config, out, image_root=image_root, resume=resume, device=device,
                                  progress=progress)
    except TrainingInterrupted as exc:
        console_err.print(f"[yellow]{exc}[/]; continue with: nctool train {data} --out {out} --resume")
        raise typer.Exit(130)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    for note in result["notes"]:
        console_err.print(f"[yellow]note:[/] {note}")
    rows = [{"epoch": r["epoch"], "clean": r["n_clean"], "ambiguous": r["n_ambiguous"], "noisy": r["n_noisy"],
             "noisy precision": r.get("noisy_precision"), "noisy recall": r.get("noisy_recall"),
             "val mR": r.get("val_mr"), "pairs/s": r["pairs_per_s"]} for r in result["epochs"]]
    summary_table("Training", rows)
    if "test" in result:
        t = result["test"]
        summary_table(f"Test (best epoch {result['best_epoch']})",
                      [{k: t[k] for k in ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "mr")}])
    console.print(f"run folder: {out}  (best.pt, last.pt, metrics.jsonl, config.json)")
