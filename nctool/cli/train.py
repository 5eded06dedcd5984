"""`nctool train`: RRSITR (or InfoNCE) training from a recipe."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from nctool.cli._ui import app, console, console_err, progress_bar, summary_table
from nctool.config import load_recipe, shipped_recipes
from nctool.errors import NctoolError
from nctool.model.objectives import OBJECTIVES

Objective = Enum("Objective", {name: name for name in OBJECTIVES}, type=str)


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="Dataset Parquet (nctool schema) with train/val/test splits.")],
    out: Annotated[Path, typer.Option(help="Run folder: config.json, metrics.jsonl, last.pt, best.pt.")],
    recipe: Annotated[Optional[str], typer.Option(
        help=f"Recipe TOML path or shipped name ({', '.join(shipped_recipes())}); default demo.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override any recipe key: section.key=value (repeatable).")] = None,
    loss: Annotated[Optional[Objective], typer.Option(
        help="Training objective (loss.kind): " + "; ".join(f"{o.name}: {o.description}" for o in OBJECTIVES.values())
    )] = None,
    epochs: Annotated[Optional[int], typer.Option(help="train.epochs")] = None,
    batch_size: Annotated[Optional[int], typer.Option(
        help="train.batch_size: the global batch (torchrun splits it over the processes)")] = None,
    lr: Annotated[Optional[float], typer.Option(help="train.lr")] = None,
    seed: Annotated[Optional[int], typer.Option(help="train.seed")] = None,
    pretrained: Annotated[Optional[str], typer.Option(
        help="model.pretrained: an open_clip tag, a local open_clip checkpoint file, or an nctool "
             "checkpoint (runs/NAME/best.pt) to fine-tune from.")] = None,
    decisions: Annotated[Optional[Path], typer.Option(
        help="A curator's decisions from `nctool review` (.sqlite or exported .parquet): kept pairs are trusted, "
             "dropped ones left out, fixed ones train with the new caption.")] = None,
    image_root: Annotated[Optional[Path], typer.Option(help="Folder for relative image paths.")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 (default: CUDA if present).")] = None,
    resume: Annotated[bool, typer.Option(
        help="Continue the run in --out exactly where it stopped, with the settings it started with.")] = False,
    folds: Annotated[Optional[int], typer.Option(
        help="Train K models, each without the train pairs of one fold of images, in --out/fold-*; `nctool score "
             "--checkpoint OUT` then scores each pair with the model that never saw it (docs/labels.md).",
        metavar="K")] = None,
) -> None:
    """Train a retrieval model with the RRSITR loss (self-paced, robust to noisy pairs)."""
    from nctool.model.train import TrainingInterrupted, train_folds
    from nctool.model.train import train as run_training
    from nctool.runtime import is_main_process

    values = {"loss.kind": loss.value if loss else None, "train.epochs": epochs, "train.batch_size": batch_size,
              "train.lr": lr, "train.seed": seed, "model.pretrained": pretrained}
    if resume:
        given = ["--recipe"] * (recipe is not None) + ["--set"] * bool(overrides) + \
            [f"--{key.split('.')[1].replace('_', '-')}" for key, value in values.items() if value is not None]
        if given:
            raise NctoolError(f"--resume: takes every setting from the run's checkpoint; drop {', '.join(given)}")
        chosen = None
    else:
        chosen = load_recipe(recipe or "demo", overrides or []).with_values(values)
    if folds is not None:
        given = ["--resume"] * resume + ["--decisions"] * (decisions is not None)
        if given:
            raise NctoolError(f"--folds: not with {' or '.join(given)}; a fold stopped midway is trained again by "
                              f"the same command")
        with progress_bar() as progress:
            result = train_folds(data, out_dir=out, recipe=chosen, folds=folds, image_root=image_root, device=device,
                                 progress=progress)
        rows = [{"fold": fold, "run": str(out / f"fold-{fold}"), "test mR": run["test"]["mr"] if run and "test" in run
                 else None, "note": "kept (finished before)" if run is None else ""}
                for fold, run in enumerate(result["runs"])]
        summary_table(f"out-of-fold training: {folds} folds", rows)
        console.print(f"next: nctool score {data} --checkpoint {out} --detector all --out scores.parquet")
        return
    try:
        with progress_bar() as progress:
            result = run_training(data, out_dir=out, recipe=chosen, decisions=decisions, image_root=image_root,
                                  resume=resume, device=device, progress=progress)
    except TrainingInterrupted as exc:
        console_err.print(f"[yellow]{exc}[/]; continue with: nctool train {data} --out {out} --resume")
        raise typer.Exit(130)
    if not is_main_process():  # under torchrun only rank 0 reports
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


@app.command("train-tagger")
def train_tagger(
    data: Annotated[Path, typer.Argument(help="Dataset Parquet (nctool schema) whose captions can be trusted: a "
                                              "clean corpus, not the noisy data it will judge.")],
    out: Annotated[Path, typer.Option(help="Tagger file to write, e.g. tagger.pt.")],
    epochs: Annotated[int, typer.Option(help="Passes over the train split's images.")] = 12,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle schedule).")] = 2e-3,
    min_count: Annotated[int, typer.Option(
        help="Learn the attribute words its captions use at least this often.")] = 20,
    image_size: Annotated[int, typer.Option(help="Pixels the tagger reads, a multiple of 8 (images are resized and "
                                                 "centre-cropped to it).")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed of the weights and the batch order.")] = 0,
    image_root: Annotated[Optional[Path], typer.Option(help="Folder for relative image paths.")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 (default: CUDA if present).")] = None,
) -> None:
    """Train a word tagger: which counts, colours and places an image's captions name (for `score --tagger`)."""
    from nctool.model.tagger import train_tagger as run_tagger_training
    from nctool.schema import check_output

    check_output(out, data)
    with progress_bar() as progress:
        result = run_tagger_training(data, out, epochs=epochs, batch_size=batch_size, lr=lr, min_count=min_count,
                                     image_size=image_size, seed=seed, image_root=image_root, device=device,
                                     progress=progress)
    summary_table("Word tagger", [{key: result[key] for key in ("images", "words", "train_loss", "val_loss")}])
    console.print(f"next: nctool score DATA --checkpoint RUN --detector attributes --tagger {out} --out scores.parquet")
