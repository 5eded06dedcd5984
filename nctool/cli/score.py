"""`nctool score`: reliability and a clean / ambiguous / noisy label for every pair, per detector.

The `--detector` choices and the detector flags (`--keep-fraction`, `--neighbors`, ...) come from
the detector registry (nctool.detect.detectors): a new detector's options appear here without an edit.
"""

from __future__ import annotations

import functools
import inspect
import math
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from nctool.cli._ui import app, console, console_err, progress_bar, summary_table
from nctool.config import ENGINES, ZERO_SHOT_RECIPE
from nctool.detect.detectors import DETECTORS, detector_names, detector_options

DetectorChoice = Enum("DetectorChoice", {name: name for name in (*detector_names(), "all")}, type=str)


def with_detector_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` one flag per detector option; it receives their values as `options` (a dict).

    Each flag is the option's `--name-with-dashes`, typed and defaulted as declared, with a help
    that names the detectors using it.
    """
    signature = inspect.signature(command, eval_str=True)
    flags = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option.default,
                               annotation=Annotated[option.type if option.default is not None else
                                                    Optional[option.type],
                                                    typer.Option(option.flag + (f"/--no-{option.flag[2:]}"
                                                                                 if option.type is bool else ""),
                                                                 help=f"{', '.join(users)}: {option.help}.")])
             for name, (option, users) in detector_options().items()]

    @functools.wraps(command)
    def wrapper(**values: Any) -> None:
        options = {name: values.pop(name) for name in detector_options()}
        command(**values, options=options)

    wrapper.__signature__ = signature.replace(
        parameters=[p for p in signature.parameters.values() if p.name != "options"] + flags)
    wrapper.__annotations__ = {p.name: p.annotation for p in wrapper.__signature__.parameters.values()}
    return wrapper


# Flags `nctool embed` shares with `nctool score` (one home for each: nctool/cli/embed.py imports them)
CheckpointFlag = Annotated[Optional[Path], typer.Option(
    help="Trained model: runs/NAME/best.pt from `nctool train` (or --model).")]
ModelFlag = Annotated[Optional[str], typer.Option(
    help="Zero-shot instead of --checkpoint: an open_clip model (ViT-B-32, nctool-tiny, ...).")]
PretrainedFlag = Annotated[Optional[str], typer.Option(
    help="With --model: its weights, an open_clip tag or checkpoint file (RemoteCLIP, GeoRSCLIP, ...) or an "
         "nctool checkpoint (default: random init).")]
RecipeFlag = Annotated[Optional[str], typer.Option(
    help=f"With --model: recipe name or TOML path for the rrsitr loss settings and batch size "
         f"(default: {ZERO_SHOT_RECIPE}, the paper's).")]
SplitFlag = Annotated[list[str], typer.Option(help="Split to score; repeat for several.")]
ImageRootFlag = Annotated[Optional[Path], typer.Option(help="Folder for relative image paths.")]
BatchSizeFlag = Annotated[int, typer.Option(help="Pairs per forward pass.")]
DeviceFlag = Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 (default: CUDA if present).")]
SeedFlag = Annotated[int, typer.Option(
    help="Seed of the reference pool and batches (rrsitr) and of the detectors' draws (loss-gmm).")]
RepeatsFlag = Annotated[int, typer.Option(help="Reference batches per pair; the loss is their mean (rrsitr).")]
PoolFlag = Annotated[int, typer.Option(help="Reference pool size (rrsitr).")]
Engine = Enum("Engine", {name: name for name in ENGINES}, type=str)
EngineFlag = Annotated[Engine, typer.Option(
    help="Who embeds: local (this process) or ray (a Ray Data actor pool writes the shards; "
         "pip install 'nctool[ray]'); docs/scaling.md.")]
AddressFlag = Annotated[Optional[str], typer.Option(
    help="--engine ray: the Ray cluster to join (default: the running one, else a new local one).")]
WorkersFlag = Annotated[Optional[int], typer.Option(
    help="--engine ray: actors, each with the model loaded once (default: the cluster's GPUs, else its CPUs).")]
GpusFlag = Annotated[Optional[float], typer.Option(
    help="--engine ray: GPUs per actor, fractions share one (default: 1 when the cluster has GPUs, else 0).")]


@app.command("score")
@with_detector_options
def score_command(
    data: Annotated[Path, typer.Argument(help="Dataset Parquet in nctool's schema (docs/schema.md).")],
    out: Annotated[Path, typer.Option(help="Scores Parquet: one row per pair and detector (long format).")],
    checkpoint: CheckpointFlag = None,
    model: ModelFlag = None,
    pretrained: PretrainedFlag = None,
    recipe: RecipeFlag = None,
    embeddings: Annotated[Optional[Path], typer.Option(
        help="Folder of `nctool embed` shards: score from them (no model needed); with a model, first bring "
             "the folder up to date.")] = None,
    engine: EngineFlag = Engine("local"),
    address: AddressFlag = None,
    workers: WorkersFlag = None,
    gpus_per_worker: GpusFlag = None,
    detector: Annotated[list[DetectorChoice], typer.Option(
        help="Detector, or all; repeat for several. "
             + "; ".join(f"{name}: {cls.description}" for name, cls in DETECTORS.items()) + ".")
    ] = [DetectorChoice("rrsitr")],
    split: SplitFlag = ["train"],
    image_root: ImageRootFlag = None,
    batch_size: BatchSizeFlag = 256,
    device: DeviceFlag = None,
    seed: SeedFlag = 0,
    repeats: RepeatsFlag = 5,
    pool: PoolFlag = 1000,
    suggest: Annotated[int, typer.Option(
        help="Suggest fixes for each flagged pair: the K captions of other images that best match its image and "
             "the K other images that best match its caption (0: off).", metavar="K")] = 0,
    options: dict | None = None,
) -> None:
    """Score every pair of a dataset for noisy correspondence with a trained model, or zero-shot (--model)."""
    from nctool.detect.measure import ModelSource, PoolSpec
    from nctool.detect.ray import RayEngine
    from nctool.detect.score import score

    source = ModelSource.from_flags(checkpoint, model, pretrained, recipe)
    ray_engine = RayEngine.from_flags(engine.value, address, workers, gpus_per_worker)
    try:
        with progress_bar() as progress:
            result = score(data, out=out, model=source, embeddings=embeddings, engine=ray_engine,
                           detectors=[choice.value for choice in detector], splits=split, image_root=image_root,
                           batch_size=batch_size, device=device, pool=PoolSpec(seed, repeats, pool), options=options,
                           suggest=suggest, progress=progress)
    except KeyboardInterrupt:
        console_err.print(_interrupted(out, embeddings, ray_engine is not None, source is not None),
                          highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    if result.get("embedded"):
        report_embedded(result["embedded"])
    summary_table(f"score: {result['pairs']} pairs of {', '.join(result['splits'])}",
                  [_shown(row) for row in result["detectors"]])
    columns = ("detector", "label", "count", "share", "noisy_rate", "precision", "recall")
    summary_table("labels against the ground truth (`noisy`)",
                  [_shown({k: row[k] for k in columns}) for row in result["labels"]])
    summary_table("what each detector states (90 % intervals; docs/labels.md)",
                  [statement_row(row) for row in result.get("noise_share", [])])
    for row in result.get("noise_share", []):
        if row["method"] == "decoys" and row["estimate"] is None:
            console_err.print(f"[yellow]note:[/] {row['detector']}: not enough evidence to state a noise share or "
                              f"label any pair clean or noisy ({row['pairs']} pairs give {row['pairs']} decoys; a "
                              f"rate needs at least {row['decoys_needed']}): every pair is ambiguous", highlight=False)
        elif row["method"] == "decoys" and not row.get("pinned", True):
            console_err.print(f"[yellow]note:[/] {row['detector']}: the noise share is not pinned (its interval is "
                              f"wider than 30 points): no pair is labelled clean or noisy; a model that tells pairs "
                              f"from mismatches better, or more pairs, narrows it", highlight=False)
        elif row["method"] == "decoys" and not row["clean"] and row.get("scene_estimate") is not None:
            console_err.print(f"[yellow]note:[/] {row['detector']}: no clean set reaches "
                              f"{100 * row['max_contamination']:g} % against same-scene decoys (a caption of another "
                              f"image of the pair's category): this model scores them like the pairs, so it cannot "
                              f"vouch that hard noise is absent; --no-scene-decoys cuts against random captions only",
                              highlight=False)
        elif row["method"] == "decoys" and not row["clean"]:
            console_err.print(f"[yellow]note:[/] {row['detector']}: no clean set reaches "
                              f"{100 * row['max_contamination']:g} % estimated noise: not enough evidence to call "
                              f"any pair clean at that rate (--max-contamination sets it)", highlight=False)
    from nctool.detect.calibration import NOISY_PROMISE  # loaded by the scoring already

    for row in result.get("noise_share", []):
        if row.get("noisy") and row.get("noisy_low") is not None and row["noisy_low"] < NOISY_PROMISE:
            console_err.print(f"[yellow]note:[/] {row['detector']}: its noisy set ({row['noisy']} pairs, est. "
                              f"precision {100 * row['noisy_precision']:.0f} %) may be only "
                              f"{100 * row['noisy_low']:.0f} % noisy at the low end of the noise share's interval: "
                              f"review it by eye (`nctool review`) before dropping it unseen", highlight=False)
    if result.get("in_sample"):
        console_err.print(f"[yellow]note:[/] {checkpoint} trained on {100 * result['in_sample']:.0f} % of these pairs, "
                          f"so the figures above are in "
                          f"sample: it has learned its noisy pairs, and the stated share ran low (3-4 points on "
                          f"average, up to 14, docs/labels.md); for figures to act on, score out of fold: `nctool "
                          f"train {data} --folds 3 --out FOLDER`, then `nctool score {data} --checkpoint FOLDER`",
                          highlight=False)
    console.print(f"wrote {result['out']} (next: nctool filter {data} --scores {result['out']} --out CLEAN.parquet)")


def statement_row(row: dict) -> dict:
    """One detector's noise share and clean / noisy sets as a person reads them, with the truth beside them
    when the data has it."""
    def share(value, low=None, high=None):
        return "-" if value is None else f"{100 * value:.1f} %" + ("" if low is None else
                                                                   f" ({100 * low:.1f}-{100 * high:.1f})")
    decoys = row["method"] == "decoys"
    shown = {"detector": row["detector"], "from": "decoys" if decoys else "mixture (no decoys)",
             "noise share": share(row["estimate"], row["low"], row["high"])}
    if row.get("scene_estimate") is not None:
        shown["same-scene share"] = share(row["scene_estimate"], row["scene_low"], row["scene_high"])
    if "truth" in row:
        shown["true share"] = share(row["truth"])
    shown["clean pairs"] = row["clean"] if decoys else "-"
    shown["clean: est. noisy"] = share(row["clean_contamination"], row["clean_low"], row["clean_high"]) \
        if decoys else "-"
    if "truth" in row:
        shown["clean: truly noisy"] = share(row.get("clean_truth")) if decoys else "-"
    shown["noisy: est. precision"] = share(row["noisy_precision"], row.get("noisy_low"), row.get("noisy_high")) \
        if decoys else "-"
    if "truth" in row:
        shown["noisy: truly noisy"] = share(row.get("noisy_truth")) if decoys else "-"
    return shown


def report_embedded(summary: dict) -> None:
    """One line on what nctool.detect.shards.embed did to its folder (and a note when it dropped older shards)."""
    if summary["invalidated"]:
        console_err.print(f"[yellow]note:[/] {summary['out']}: the shards there were {summary['invalidated']}")
    console.print(f"embeddings: {summary['pairs']} pairs in {summary['shards']} shards in {summary['out']} "
                  f"({len(summary['computed'])} computed, {summary['reused']} reused)")


def _interrupted(out: Path, embeddings: Path | None, ray: bool, model_given: bool) -> str:
    """What a Ctrl-C left: the scores file is written only at the end (atomically); shards embedded so far stay."""
    from nctool.detect.shards import default_folder

    line = f"interrupted: nothing written ({out} is written only when scoring finishes)"
    folder = embeddings if embeddings is not None else default_folder(out) if ray else None
    if model_given and folder is not None:
        line += f"; the shards finished so far stay in {folder}: run the same command to continue"
    return line


_HEADERS = {"auroc": "AUROC", "auprc": "AUPRC", "precision": "noisy precision", "recall": "noisy recall", "f1": "F1"}


def _shown(row: dict) -> dict:
    """Readable headers; undefined metrics (NaN) print as "-"."""
    return {_HEADERS.get(k, k): None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
