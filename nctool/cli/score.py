"""`nctool score`: reliability and a clean / ambiguous / noisy label for every pair, per detector."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from nctool.cli._ui import app, console, progress_bar, summary_table


@app.command("score")
def score_command(
    data: Path = typer.Argument(..., help="Dataset Parquet in nctool's schema (docs/schema.md)."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Trained model: runs/NAME/best.pt from `nctool train`."),
    out: Path = typer.Option(..., "--out", help="Scores Parquet: one row per pair and detector (long format)."),
    detector: list[str] = typer.Option(["rrsitr"], "--detector",
                                       help="rrsitr, similarity, loss-gmm, neighbors or all; repeat for several "
                                            "(nctool/detectors.py)."),
    split: list[str] = typer.Option(["train"], "--split", help="Split to score; repeat for several."),
    image_root: Optional[Path] = typer.Option(None, "--image-root", help="Folder for relative image paths."),
    batch_size: int = typer.Option(256, "--batch-size", help="Pairs per forward pass."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 (default: CUDA if present)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the reference pool and batches (rrsitr) and of the mixture (loss-gmm)."),
    repeats: int = typer.Option(5, "--repeats", help="Reference batches per pair; the loss is their mean (rrsitr)."),
    pool: int = typer.Option(1000, "--pool", help="Reference pool size (rrsitr)."),
    keep_fraction: float = typer.Option(0.6, "--keep-fraction",
                                        help="similarity, neighbors: share of pairs labelled clean."),
    threshold: Optional[float] = typer.Option(None, "--threshold",
                                              help="similarity, neighbors: label clean when the cosine score is "
                                                   "at least this (e.g. 0.28), instead of --keep-fraction."),
    neighbors: int = typer.Option(10, "--neighbors", help="neighbors: how many neighbours vote."),
) -> None:
    """Score every pair of a dataset for noisy correspondence with a trained model."""
    from nctool.scoring import score

    with progress_bar() as progress:
        result = score(data, checkpoint, out, detectors=detector, splits=split, image_root=image_root,
                       batch_size=batch_size, device=device, seed=seed, repeats=repeats, pool_size=pool,
                       keep_fraction=keep_fraction, threshold=threshold, k=neighbors, progress=progress)
    summary_table(f"score: {result['pairs']} pairs of {', '.join(result['splits'])}",
                  [_shown(row) for row in result["detectors"]])
    columns = ("detector", "label", "count", "share", "noisy_rate", "precision", "recall")
    summary_table("labels against the ground truth (`noisy`)",
                  [_shown({k: row[k] for k in columns}) for row in result["labels"]])
    console.print(f"wrote {result['out']} (next: nctool filter {data} --scores {result['out']} --out CLEAN.parquet)")


_HEADERS = {"auroc": "AUROC", "auprc": "AUPRC", "precision": "noisy precision", "recall": "noisy recall", "f1": "F1"}


def _shown(row: dict) -> dict:
    """Readable headers; undefined metrics (NaN) print as "-"."""
    return {_HEADERS.get(k, k): None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
