"""RRSITR training (kept apart from the model and loss library), as named phases around a TrainState.

`train()` runs one recipe on one dataset file: `prepare` (read, build, or restore from `last.pt`),
then per epoch `train_one_epoch` (each step `train_step`) and `end_epoch` (gather the split across
processes, validate, save `best.pt` on the best val mR, then `last.pt`), and last `test`. Per-step
warm-up + cosine AdamW; the objective of each epoch comes from nctool.model.objectives (InfoNCE warm-up,
then RRSITR). Ctrl-C finishes the current step, saves `last.pt` and raises TrainingInterrupted;
`resume=True` continues with the checkpoint's own recipe to the bit-identical result of an
uninterrupted run. Under torchrun it runs DDP: the recipe's batch size is the global batch, split
over the processes, and every process gathers the whole batch's embeddings, so N processes take
the steps one process would (up to float rounding) and a run may resume with another N.
docs/training.md explains the choices.
"""

from __future__ import annotations

import hashlib
import json
import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from nctool import runtime
from nctool.config import Recipe, TrainCfg
from nctool.data.decisions import apply_decisions, match_decisions, read_decisions
from nctool.data.images import resolve_root
from nctool.errors import NctoolError
from nctool.metrics import label_metrics
from nctool.model import losses
from nctool.model.batches import PairData
from nctool.model.checkpoint import checkpoint_recipe, load_weights, read_checkpoint, save_checkpoint
from nctool.model.clip import RetrievalModel, create_model
from nctool.model.evaluation import evaluate_retrieval
from nctool.model.objectives import batch_logits, get_objective, objective_for_epoch
from nctool.model.transforms import preprocess_for
from nctool.progress import Progress, silent
from nctool.schema import (
    LABELS,
    SPLITS,
    atomic_path,
    check_output,
    column_names,
    dataset_fingerprint,
    pair_id_hashes,
    read_table,
    write_json,
)

RUN_FILES = ("last.pt", "best.pt", "results.json")  # a folder holding any of these holds a run
FOLDS_FILE = "folds.json"  # an out-of-fold run: its folds and their runs (train_folds)


def image_folds(image_ids: np.ndarray, folds: int) -> np.ndarray:
    """The fold (0 .. folds-1) of each pair by a stable hash of its image_id: all captions of an image share one."""
    digest = [hashlib.blake2b(str(image_id).encode(), digest_size=8).digest() for image_id in image_ids]
    return np.array([int.from_bytes(value, "little") % folds for value in digest], dtype=np.int64)


def train_folds(data_path: str | Path, *, out_dir: str | Path, recipe: Recipe, folds: int,
                image_root: str | Path | None = None, device: str | None = None,
                progress: Progress | None = None) -> dict:
    """K models, each trained without the train pairs of one fold of images (`image_folds`), in
    out_dir/fold-K/; out_dir/folds.json lists them. `nctool score` given out_dir scores each pair with
    the model that never trained on it (out-of-fold scores, docs/labels.md). A fold whose run finished
    is kept. Returns {"out_dir", "folds", "runs": [each run's summary or None when kept]}."""
    if folds < 2:
        raise NctoolError(f"folds {folds}: must be at least 2 (each model leaves one fold out)")
    out_dir = check_output(out_dir, data_path, folder=True)
    runs = []
    for fold in range(folds):
        run_dir = out_dir / f"fold-{fold}"
        if (run_dir / "best.pt").exists() and (run_dir / "results.json").exists():
            runs.append(None)
            continue
        if run_dir.exists():  # a fold stopped midway starts again
            _remove_partial_run(run_dir)
        runs.append(train(data_path, out_dir=run_dir, recipe=recipe, image_root=image_root, device=device,
                          progress=progress, fold=(fold, folds)))
    present = column_names(data_path)
    columns = [name for name in ("pair_id", "split", "image_id", "caption", "decision") if name in present]
    write_json({"folds": folds, "runs": [f"fold-{fold}/best.pt" for fold in range(folds)],
                "data": dataset_fingerprint(read_table(data_path, columns=columns))}, out_dir / FOLDS_FILE)
    return {"out_dir": str(out_dir), "folds": folds, "runs": runs}
TRUSTED = ("keep", "fix")  # decisions that make a pair trusted in training


class TrainingInterrupted(Exception):
    """Raised after Ctrl-C once `last.pt` is saved; `path` is the checkpoint to resume from."""

    def __init__(self, path: Path, epoch: int, step: int):
        super().__init__(f"interrupted at epoch {epoch + 1}, step {step}; saved {path}")
        self.path = path


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up to 1, then cosine to 0 at total_steps (per optimiser step)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_optimizer(model: torch.nn.Module, cfg: TrainCfg) -> torch.optim.AdamW:
    """AdamW; weight decay only on parameters with >= 2 dims (not gains, biases, scales)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


def epoch_order(seed: int, epoch: int, rows: np.ndarray, *, classes: np.ndarray | None = None,
                images: np.ndarray | None = None, batch_size: int = 0, classes_per_batch: int = 0) -> np.ndarray:
    """The shuffled train rows of one epoch: a pure function of (seed, epoch), so resume repeats it.

    With `classes_per_batch` k > 0 (hard negatives, `train.classes_per_batch`): each run of
    `batch_size` rows is made of k groups of `batch_size // k` pairs of one scene class each (`classes`,
    per row of `rows`; the groups are shuffled, so two may share a class), so a pair's
    in-batch negatives are mostly captions of other images of its own class. Within a class the pairs
    come one caption per image per round (`images`, per row), so a batch's share of one class seldom
    holds two captions of one image (a false negative).
    """
    rng = np.random.default_rng([seed, epoch])
    if not classes_per_batch:
        return rows[rng.permutation(len(rows))]
    group = max(batch_size // classes_per_batch, 1)
    groups = []
    for name in np.unique(classes):
        members = np.flatnonzero(classes == name)
        members = members[rng.permutation(len(members))]
        image_ids, first = np.unique(images[members], return_inverse=True)
        # rank of each row among its image's rows: round r holds the r-th caption of every image, in a shuffled
        # image order
        rounds = np.zeros(len(members), dtype=np.int64)
        seen = np.zeros(len(image_ids), dtype=np.int64)
        for i, image in enumerate(first):
            rounds[i], seen[image] = seen[image], seen[image] + 1
        image_rank = rng.permutation(len(image_ids))[first]
        members = members[np.lexsort((image_rank, rounds))]
        groups += [members[start:start + group] for start in range(0, len(members), group)]
    return rows[np.concatenate([groups[i] for i in rng.permutation(len(groups))])]


@dataclass
class TrainState:
    """What changes while training; `state_dict()` is what `last.pt` stores besides the recipe."""

    model: RetrievalModel
    optimizer: torch.optim.Optimizer
    epoch_labels: torch.Tensor          # per dataset row: its split code this epoch, -1 when not seen
    epoch: int = 0                      # epochs finished
    batch: int = 0                      # batches finished within the running epoch
    step: int = 0                       # optimiser steps taken
    best_mr: float = -1.0
    rrsitr_on: bool = False             # the InfoNCE warm-up is over

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "epoch_labels": self.epoch_labels.clone(), "epoch": self.epoch, "batch": self.batch,
                "step": self.step, "best_mr": self.best_mr, "rrsitr_on": self.rrsitr_on,
                "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict, source: str | Path) -> None:
        load_weights(self.model, state["model"], source)
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch_labels = state["epoch_labels"].clone()
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]
        self.best_mr, self.rrsitr_on = state["best_mr"], state["rrsitr_on"]
        torch.set_rng_state(state["torch_rng"])


@dataclass
class Run:
    """What stays fixed during a run: the recipe, the data and where things go."""

    recipe: Recipe
    out_dir: Path
    data: PairData
    rows: dict[str, np.ndarray]          # split -> row indices
    truth: np.ndarray | None             # `noisy` ground truth per row, when the data carry it
    trusted: torch.Tensor                # bool per row: a person kept or fixed the pair (nctool.data.decisions)
    fingerprint: str                     # nctool.schema.dataset_fingerprint of the data
    trained_pairs: torch.Tensor          # nctool.schema.pair_id_hashes of the pairs it trains on
    device: torch.device
    rank: int
    world: int
    ddp_model: torch.nn.Module           # the model, DDP-wrapped under torchrun
    steps_per_epoch: int                 # global batches per epoch, whatever the number of processes
    log: "_MetricsLog | None"            # rank 0 only
    notes: list[str] = field(default_factory=list)

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out_dir / "best.pt"


def train(data_path: str | Path, *, out_dir: str | Path, recipe: Recipe | None = None,
          decisions: str | Path | None = None, image_root: str | Path | None = None, resume: bool = False,
          device: str | None = None, progress: Progress | None = None, fold: tuple[int, int] | None = None) -> dict:
    """Train a recipe on one dataset file; returns a summary (per-epoch records, test recalls, notes).

    Parameters
    ----------
    data_path
        Dataset Parquet in nctool's schema with a train split (val and test are used when present).
    out_dir
        Run folder: config.json, metrics.jsonl, last.pt (resume), best.pt (best val mR), results.json.
    recipe
        The hyperparameters. Required for a new run; with `resume` the checkpoint's recipe is used,
        and a different one given here is refused.
    decisions
        A curator's decisions (`nctool review`: a .sqlite store or an exported .parquet), applied to
        the train split: kept pairs are trusted (weight 1, never split as noisy), dropped ones are
        left out, fixed ones train with the new caption. Decisions on val/test rows are not applied
        (the run is measured there) and are reported in the notes.
    image_root
        Folder that relative image paths resolve against (default: the one the file records).
    resume
        Continue the run in `out_dir` from its last.pt (refused for another dataset).
    device
        "cpu", "cuda", "cuda:1"; default CUDA when present.
    progress
        Callback (done, total, description).
    fold
        (k, K): leave out the train pairs whose image is in fold k of K (image_folds; train_folds).
    """
    progress = progress or silent
    out_dir = check_output(out_dir, data_path, decisions, folder=True)
    if not resume:
        held = [name for name in RUN_FILES if (out_dir / name).exists()]
        if held:
            raise NctoolError(f"{out_dir} already holds a run ({', '.join(held)}); continue it with --resume "
                              f"or choose another --out")
    run = None
    try:
        run, state = prepare(Path(data_path), out_dir, recipe, decisions, image_root, resume, device, progress, fold)
        summary = {"out_dir": str(out_dir), "notes": run.notes, "epochs": []}
        with _stop_on_sigint() as stop:
            while state.epoch < run.recipe.train.epochs:
                record = train_one_epoch(run, state, stop, progress)
                summary["epochs"].append(end_epoch(run, state, record, progress))
    except BaseException:
        if run is not None and run.log:
            run.log.close()
        # by rank 0 alone: under torchrun the others may get here before it has saved last.pt
        if not resume and runtime.is_main_process() and not (out_dir / "last.pt").exists():
            _remove_partial_run(out_dir)  # a run that failed before it could be resumed leaves nothing
        raise
    if run.log:
        run.log.close()
    if len(run.rows["test"]) and run.rank == 0:
        summary.update(test(run, state, progress))
        write_json(summary, out_dir / "results.json")
    return summary


def prepare(data_path: Path, out_dir: Path, recipe: Recipe | None, decisions, image_root, resume: bool, device,
            progress: Progress, fold: tuple[int, int] | None = None) -> tuple[Run, TrainState]:
    """Read the data, build the model and optimiser, and restore `last.pt` when resuming."""
    saved = None
    if resume:
        if not (out_dir / "last.pt").exists():
            raise NctoolError(f"--resume: {out_dir / 'last.pt'} not found (no run, or one stopped before its "
                              f"first epoch ended); start a new run in an empty --out")
        saved = read_checkpoint(out_dir / "last.pt")
        saved_recipe = checkpoint_recipe(saved, out_dir / "last.pt")
        if recipe is not None and recipe != saved_recipe:
            raise NctoolError(f"--resume: {_first_difference(recipe, saved_recipe)}; a resumed run keeps the "
                              f"settings it started with, so drop the recipe options or start a new --out")
        recipe = saved_recipe
    elif recipe is None:
        raise NctoolError("train: no recipe; give one (e.g. --recipe demo)")
    get_objective(recipe.loss.kind)  # refuses an unknown objective before any work
    rank, world = runtime.init_distributed()
    dev = runtime.pick_device(device)
    df, notes = read_table(data_path), []
    if decisions is not None:
        df, notes = _with_decisions(df, decisions)
    fingerprint = dataset_fingerprint(df)
    if saved is not None and saved.get("dataset") != fingerprint:
        raise NctoolError(f"--resume: {data_path} (with these --decisions) is not the data the run in {out_dir} "
                          f"was started on; give that dataset and decisions, or start a new run in another --out")
    rows = {split: np.flatnonzero(df["split"].to_numpy() == split) for split in SPLITS}
    if fold is not None:  # the held-out fold's train pairs are scored by this model, never trained on
        rows["train"] = rows["train"][image_folds(df["image_id"].to_numpy()[rows["train"]], fold[1]) != fold[0]]
        notes.append(f"fold {fold[0]} of {fold[1]}: trained on {len(rows['train'])} train pairs, the fold's left out")
    batch, n_train = recipe.train.batch_size, len(rows["train"])
    if n_train == 0:
        raise NctoolError(f"{data_path}: the train split is empty; nctool train needs rows with split='train'")
    if recipe.train.classes_per_batch and "category" not in df:
        raise NctoolError(f"{data_path}: train.classes_per_batch={recipe.train.classes_per_batch} draws each batch "
                          f"from a few scene classes, and the data has no `category` column; add one (nctool ingest "
                          f"reads it from image names such as airport_12.jpg) or set train.classes_per_batch=0")
    if batch > n_train:
        raise NctoolError(f"train.batch_size={batch} does not fit the {n_train} train rows; lower it, e.g. "
                          f"--batch-size {max(2, n_train // 2)}")
    if batch < world:
        raise NctoolError(f"train.batch_size={batch} is split over {world} processes, one pair each at least; "
                          f"give --batch-size {world} or more, or start fewer processes")
    if not len(rows["val"]):
        notes.append("no val split: trained without model selection (best.pt = the last epoch)")

    torch.manual_seed(recipe.train.seed)
    model = create_model(recipe.model.name, pretrained=recipe.model.pretrained or None,
                         mask_padding=recipe.model.mask_padding).to(dev)
    data = PairData(df, resolve_root(data_path, image_root), preprocess_for(model), progress=progress)
    state = TrainState(model, build_optimizer(model, recipe.train), torch.full((len(df),), -1))
    if saved is not None:
        state.load_state_dict(saved, out_dir / "last.pt")
    # a last partial batch trains unless drop_last, when it has the 2 pairs the split needs and one per process
    steps = n_train // batch + (not recipe.train.drop_last and n_train % batch >= max(2, world))
    log = None
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(recipe.to_dict(), out_dir / "config.json")
        log = _MetricsLog(out_dir / "metrics.jsonl", state.step if saved is not None else None)
        if log.torn:
            notes.append(f"{log.path}: dropped {log.torn} torn line(s) (the run was stopped while writing one)")
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    truth = df["noisy"].to_numpy(dtype=bool) if "noisy" in df else None
    trusted = torch.tensor(df["decision"].isin(TRUSTED).to_numpy() if "decision" in df else
                           np.zeros(len(df), dtype=bool))
    trained_pairs = torch.from_numpy(pair_id_hashes(df["pair_id"].to_numpy()[rows["train"]]))
    return Run(recipe, out_dir, data, rows, truth, trusted, fingerprint, trained_pairs, dev, rank, world, ddp_model,
               steps, log, notes), state


def _with_decisions(df: pd.DataFrame, path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """The dataset with a curator's decisions applied to its train rows (dropped pairs removed).

    Decisions on pairs not in the data are refused and those made on another version of a pair are
    not applied (a note says so), as `nctool filter` does (nctool.data.decisions.match_decisions).
    """
    decisions, stale = match_decisions(df, read_decisions(path))
    train_ids = df.loc[df["split"] == "train", "pair_id"]
    applied = decisions["pair_id"].isin(train_ids)
    decided = apply_decisions(df, decisions[applied])
    notes = [f"{int(applied.sum())} review decision(s) applied to the train split"]
    if not applied.all():
        notes.append(f"{int((~applied).sum())} decision(s) on pairs outside the train split were not applied: "
                     f"the run is measured there")
    if stale:
        notes.append(stale)
    return decided[decided["decision"] != "drop"].reset_index(drop=True), notes


def train_one_epoch(run: Run, state: TrainState, stop: dict, progress: Progress) -> dict:
    """Train the rest of epoch `state.epoch`; returns its record. Saves and raises on Ctrl-C."""
    cfg = run.recipe.train
    if state.batch == 0:  # a new epoch (not one resumed midway): choose its objective
        learned = _learned_share(state.epoch_labels[run.rows["train"]])
        state.rrsitr_on = objective_for_epoch(run.recipe.loss, epoch=state.epoch, learned_share=learned,
                                              started=state.rrsitr_on) == "rrsitr"
        state.epoch_labels[:] = -1
    objective = "rrsitr" if state.rrsitr_on else "infonce"
    train_rows, grouping = run.rows["train"], {}
    if cfg.classes_per_batch:
        frame = run.data.frame
        grouping = {"classes": frame["category"].to_numpy()[train_rows], "batch_size": cfg.batch_size,
                    "images": frame["image_id"].to_numpy()[train_rows], "classes_per_batch": cfg.classes_per_batch}
    order = epoch_order(cfg.seed, state.epoch, train_rows, **grouping)
    run.ddp_model.train()
    started, pairs = time.perf_counter(), 0
    while state.batch < run.steps_per_epoch:
        rows = order[state.batch * cfg.batch_size:(state.batch + 1) * cfg.batch_size]
        record = train_step(run, state, rows, objective)
        pairs += len(rows)
        if run.log:
            run.log.write(record)
        progress(state.batch, run.steps_per_epoch, f"epoch {state.epoch + 1}/{cfg.epochs}")
        if stop["stop"]:
            if run.rank == 0:
                save_checkpoint(_last_payload(run, state), run.last_path)
            raise TrainingInterrupted(run.last_path, state.epoch, state.batch)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "pairs_per_s": pairs / max(seconds, 1e-9)}


def train_step(run: Run, state: TrainState, rows: np.ndarray, objective: str) -> dict:
    """One optimiser step on the global batch `rows`; returns the step's log record.

    Each process embeds its own consecutive share of the rows and gathers the others' embeddings
    (runtime.gather_rows), so every process computes the whole batch's loss, with the negatives one
    process with the whole batch would see, and labels every pair. It backpropagates only its own
    pairs' terms, times world / len(rows): the gathering sums each embedding's gradient over the
    processes and DDP averages the processes' gradients, which makes the step one process's step.
    """
    cfg = run.recipe.train
    counts = [len(part) for part in np.array_split(rows, run.world)]
    start = sum(counts[:run.rank])
    own = slice(start, start + counts[run.rank])
    images, tokens = _train_batch(run, rows[own], state.epoch)
    trusted = run.trusted[rows].to(run.device)
    images, tokens = images.to(run.device, non_blocking=True), tokens.to(run.device, non_blocking=True)
    with runtime.autocast(run.device, cuda=cfg.amp, cpu=cfg.amp_cpu):
        # the (DDP) model is called, not its encode_* methods, so that DDP syncs the gradients
        image_global, image_local, text_global, text_local = run.ddp_model(images, tokens)
        if not run.recipe.loss.use_local:  # unused: not worth gathering
            image_local = text_local = None
        embeddings = [image_global, image_local, text_global, text_local]
        if run.world > 1:
            embeddings = [None if part is None else runtime.gather_rows(part, counts) for part in embeddings]
        global_sim, local = batch_logits(*embeddings, run.recipe.loss)
        loss, details = get_objective(objective).fn(global_sim, local, run.recipe.loss, trusted)
    state.optimizer.zero_grad(set_to_none=True)
    (details["per_pair"][own].sum() * (run.world / len(rows))).backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(state.model.parameters(), cfg.grad_clip)
    lr = cfg.lr * lr_factor(state.step, cfg.warmup_steps, run.steps_per_epoch * cfg.epochs)
    for group in state.optimizer.param_groups:
        group["lr"] = lr
    state.optimizer.step()
    state.step += 1
    state.batch += 1
    g1, g2 = losses.recipe_thresholds(run.recipe.loss, len(rows))
    labels = losses.split_by_loss(details["loss"].float().cpu(), g1, g2)
    labels = labels.masked_fill(trusted.cpu(), losses.CLEAN)  # a person's word outranks the loss
    state.epoch_labels[rows] = labels
    return {"step": state.step, "epoch": state.epoch + 1, "loss": loss.item(), "lr": lr,
            "grad_norm": float(grad_norm), "objective": objective,
            **{f"batch_{name}": int((labels == code).sum()) for code, name in enumerate(LABELS)}}


def end_epoch(run: Run, state: TrainState, record: dict, progress: Progress) -> dict:
    """Validate, save best.pt (when better) and then last.pt; log the record with the epoch's split."""
    if run.world > 1:  # every process labelled every pair alike; rank 0's labels, the ones last.pt keeps, rule
        dist.broadcast(state.epoch_labels, 0)
    train_rows = run.rows["train"]
    record = {"step": state.step, "epoch": state.epoch + 1, "kind": "epoch", **record,
              **_split_quality(state.epoch_labels[train_rows].numpy(),
                               None if run.truth is None else run.truth[train_rows])}
    improved = True
    if len(run.rows["val"]):
        val = evaluate_retrieval(state.model, run.data, run.rows["val"], run.recipe.eval, run.device, progress,
                                 "validate")
        record.update({f"val_{k}": v for k, v in val.items()})
        improved = val["mr"] > state.best_mr
        state.best_mr = max(state.best_mr, val["mr"])
    state.epoch, state.batch = state.epoch + 1, 0
    if run.world > 1:
        dist.barrier()
    if run.rank == 0:
        # best.pt before last.pt: a kill between the two resumes from the previous last.pt, replays
        # this epoch and writes the same best.pt again, so best.pt never lags behind last.pt's best_mr
        if improved:
            save_checkpoint(_best_payload(run, state, record.get("val_mr")), run.best_path)
            record["best"] = True
        save_checkpoint(_last_payload(run, state), run.last_path)
    if run.log:
        run.log.write(record)
    return record


def crop_generator(seed: int, epoch: int, row: int) -> torch.Generator:
    """The generator of one dataset row's random crop in one epoch.

    A pure function of (seed, epoch, row), so neither a resume nor the number of processes (which
    decides who embeds the row) changes a crop.
    """
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch, row]).generate_state(1)[0]))


def _train_batch(run: Run, rows: np.ndarray, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, tokens) of these rows, each image with its own crop_generator's crop."""
    return run.data.batch(rows, train=True, generator=[crop_generator(run.recipe.train.seed, epoch, int(row))
                                                       for row in rows])


def test(run: Run, state: TrainState, progress: Progress) -> dict:
    """Test recalls of the best checkpoint (rank 0)."""
    best = read_checkpoint(run.best_path)
    load_weights(state.model, best["model"], run.best_path)
    recalls = evaluate_retrieval(state.model, run.data, run.rows["test"], run.recipe.eval, run.device, progress,
                                 "test")
    return {"test": recalls, "best_epoch": best["epoch"]}


def _best_payload(run: Run, state: TrainState, val_mr: float | None) -> dict:
    """best.pt: what scoring and fine-tuning need (weights, recipe, data), without the optimiser."""
    return {"model": state.model.state_dict(), "config": run.recipe.to_dict(), "epoch": state.epoch,
            "val_mr": val_mr, "dataset": run.fingerprint, "trained_pairs": run.trained_pairs}


def _last_payload(run: Run, state: TrainState) -> dict:
    return {**state.state_dict(), "config": run.recipe.to_dict(), "dataset": run.fingerprint,
            "trained_pairs": run.trained_pairs}


def _first_difference(given: Recipe, saved: Recipe) -> str:
    ours, theirs = given.to_dict(), saved.to_dict()
    for section, values in theirs.items():
        for key, value in values.items():
            if ours[section][key] != value:
                return f"{section}.{key} is {ours[section][key]!r} here but {value!r} in the run"
    return "the recipe differs"


def _remove_partial_run(out_dir: Path) -> None:
    """Remove what a new run wrote before it failed (it held no run files when it started)."""
    for name in ("config.json", "metrics.jsonl", *RUN_FILES):
        (out_dir / name).unlink(missing_ok=True)
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()


@contextmanager
def _stop_on_sigint():
    """Turn Ctrl-C into a flag checked between steps, so a step is never cut in half."""
    state = {"stop": False}
    if threading.current_thread() is not threading.main_thread():  # signals only reach the main thread
        yield state
        return

    def handler(signum, frame):
        state["stop"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


class _MetricsLog:
    """Append-only metrics.jsonl; on resume, records past the checkpoint are dropped first."""

    def __init__(self, path: Path, keep_until_step: int | None):
        self.path = path
        self.torn = 0  # lines dropped that were not whole records
        if keep_until_step is None:
            path.write_text("")
        elif path.exists():
            records = [(line, _record(line)) for line in path.read_text().splitlines() if line]
            self.torn = sum(record is None for _, record in records)  # a kill while a record was written
            kept = [line for line, record in records
                    if record is not None and record.get("step", 0) <= keep_until_step]
            with atomic_path(path) as tmp:
                tmp.write_text("".join(line + "\n" for line in kept))
        self._file = path.open("a")

    def write(self, record: dict) -> None:
        # JSON has no NaN: undefined values (e.g. precision of an empty bin) are written as null
        record = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _record(line: str) -> dict | None:
    """One metrics.jsonl line as its record; None for a line that is not one (torn by a kill)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _split_quality(labels: np.ndarray, truth: np.ndarray | None) -> dict:
    """Counts per bin, and each bin's precision/recall against ground truth when there is one."""
    seen = labels >= 0
    names = np.asarray(LABELS)[labels[seen]]
    out = {f"n_{name}": int((names == name).sum()) for name in LABELS}
    if truth is not None:
        for row in label_metrics(truth[seen], names):
            out[f"{row['label']}_noisy_rate"] = row["noisy_rate"]
            # precision/recall are undefined (NaN) for the ambiguous bin; JSON has no NaN
            out.update({f"{row['label']}_{k}": row[k] for k in ("precision", "recall") if math.isfinite(row[k])})
    return out


def _learned_share(labels: torch.Tensor) -> float:
    """Share of the last epoch's train pairs below g2 (not in the noisy bin); 1 before any epoch.

    The InfoNCE warm-up lasts until this reaches loss.warmup_min_learned: switching while the noisy
    bin holds most pairs leaves the hardest-negative triplet term in charge, and from a weak model
    that collapses every similarity to one value (docs/training.md).
    """
    seen = labels >= 0
    return 1.0 if not seen.any() else float((labels[seen] != losses.NOISY).sum() / seen.sum())
