"""RRSITR training loop (kept apart from the model and loss library).

`train()` runs one recipe on one dataset file: per-step warm-up + cosine AdamW, the RRSITR loss
(or plain InfoNCE), validation mR every epoch, `last.pt` every epoch and `best.pt` on the best
val mR (both written atomically), `metrics.jsonl`, and exact resume. Ctrl-C finishes the current
step, saves `last.pt` and raises TrainingInterrupted. Under torchrun it runs DDP with the
recipe's batch size per process (the split into clean/ambiguous/noisy is per process batch).
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from nctool import losses
from nctool.checkpoint import read_checkpoint, save_checkpoint
from nctool.data import PairData
from nctool.errors import NctoolError
from nctool.evaluation import evaluate_retrieval
from nctool.images import resolve_root
from nctool.metrics import label_metrics
from nctool.model import create_model, local_similarity
from nctool.schema import atomic_path, read_table, write_json


class TrainingInterrupted(Exception):
    """Raised after Ctrl-C once `last.pt` is saved; `path` is the checkpoint to resume from."""

    def __init__(self, path: Path, epoch: int, step: int):
        super().__init__(f"interrupted at epoch {epoch + 1}, step {step}; saved {path}")
        self.path = path


def pick_device(requested: str | None = None) -> torch.device:
    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise NctoolError(f"--device {requested}: no CUDA device is available here; use --device cpu")
        return torch.device(requested)
    if dist.is_available() and dist.is_initialized() and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up to 1, then cosine to 0 at total_steps (per optimiser step)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_optimizer(model: torch.nn.Module, cfg: dict) -> torch.optim.AdamW:
    """AdamW; weight decay only on parameters with >= 2 dims (not gains, biases, scales)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"])


def batch_loss(model, images, tokens, loss_cfg: dict, use_rrsitr: bool):
    """Forward one batch and return (loss, details) of the RRSITR or InfoNCE loss.

    `model` is called (not its encode_* methods) so that a DDP wrapper syncs the gradients.
    """
    img_global, img_local, txt_global, txt_local, _ = model(images, tokens)
    global_sim = img_global.float() @ txt_global.float().T  # rows: images, columns: texts
    local_logits = None
    if loss_cfg["use_local"]:
        # padding positions arrive zeroed when the model masks them (model.mask_padding)
        local_logits = loss_cfg["local_scale"] * local_similarity(txt_local, img_local).T
    if not use_rrsitr:
        return losses.infonce_loss(global_sim, scale=loss_cfg["logit_scale"], local_logits=local_logits)
    g1, g2 = losses.recipe_thresholds(loss_cfg, len(images))
    return losses.rrsitr_loss(global_sim, local_logits, g1, g2, scale=loss_cfg["logit_scale"],
                              w_ambiguous=loss_cfg["w_ambiguous"], w_noisy=loss_cfg["w_noisy"], m0=loss_cfg["margin"])


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


def _distributed() -> tuple[int, int]:
    """(rank, world size); starts the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def epoch_order(seed: int, epoch: int, rows: np.ndarray) -> np.ndarray:
    """The shuffled train rows of one epoch: a pure function of (seed, epoch), so resume repeats it."""
    return rows[np.random.default_rng([seed, epoch]).permutation(len(rows))]


class _MetricsLog:
    """Append-only metrics.jsonl; on resume, records past the checkpoint are dropped first."""

    def __init__(self, path: Path, keep_until_step: int | None):
        self.path = path
        if keep_until_step is None:
            path.write_text("")
        elif path.exists():
            kept = [line for line in path.read_text().splitlines()
                    if line and json.loads(line).get("step", 0) <= keep_until_step]
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


def _split_quality(labels: np.ndarray, truth: np.ndarray | None) -> dict:
    """Counts per bin, and each bin's precision/recall against ground truth when there is one."""
    seen = labels >= 0
    names = np.array(losses.LABEL_NAMES)[labels[seen]]
    out = {f"n_{name}": int((names == name).sum()) for name in losses.LABEL_NAMES}
    if truth is not None:
        for row in label_metrics(truth[seen], names):
            out[f"{row['label']}_noisy_rate"] = row["noisy_rate"]
            # precision/recall are undefined (NaN) for the ambiguous bin; JSON has no NaN
            out.update({f"{row['label']}_{k}": row[k] for k in ("precision", "recall") if math.isfinite(row[k])})
    return out


def _learned_share(labels: np.ndarray, world: int) -> float:
    """Share of the last epoch's train pairs below g2 (not in the noisy bin); 1 before any epoch.

    The InfoNCE warm-up lasts until this reaches loss.warmup_min_learned: switching while the noisy
    bin holds most pairs leaves the hardest-negative triplet term in charge, and from a weak model
    that collapses every similarity to one value (seen at 60 and 80 % noise; benchmarks/README.md).
    """
    seen = labels >= 0
    counts = torch.tensor([float((labels[seen] != losses.NOISY).sum()), float(seen.sum())])
    if world > 1:
        dist.all_reduce(counts)
    return 1.0 if counts[1] == 0 else float(counts[0] / counts[1])


def train(data_path: str | Path, config: dict, out_dir: str | Path, image_root: str | Path | None = None,
          resume: bool = False, device: str | None = None, progress=None) -> dict:
    """Train one recipe on one dataset; returns a summary (val/test recalls, paths, notes)."""
    progress = progress or (lambda done, total, desc: None)
    out_dir = Path(out_dir)
    mcfg, lcfg, tcfg, ecfg = config["model"], config["loss"], config["train"], config["eval"]
    if lcfg["kind"] not in ("rrsitr", "infonce"):
        raise NctoolError(f"loss.kind '{lcfg['kind']}': choose rrsitr or infonce")
    rank, world = _distributed()
    dev = pick_device(device)
    notes: list[str] = []

    df = read_table(data_path)
    split_rows = {s: np.flatnonzero(df["split"].to_numpy() == s) for s in ("train", "val", "test")}
    train_rows, batch = split_rows["train"], tcfg["batch_size"]
    if len(train_rows) == 0:
        raise NctoolError(f"{data_path}: the train split is empty; nctool train needs rows with split='train'")
    if batch < 2 or batch * world > len(train_rows):
        raise NctoolError(f"train.batch_size={batch} does not fit the {len(train_rows)} train rows"
                          f"{f' over {world} processes' if world > 1 else ''}; lower it, e.g. --batch-size "
                          f"{max(2, len(train_rows) // (2 * world))}")
    if len(split_rows["val"]) == 0:
        notes.append("no val split: trained without model selection (best.pt = the last epoch)")
    truth = df["noisy"].to_numpy(dtype=bool) if "noisy" in df else None

    ckpt_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    state = None
    if resume:
        if not ckpt_path.exists():
            raise NctoolError(f"--resume: {ckpt_path} not found; start without --resume")
        state = read_checkpoint(ckpt_path)
        config = state["config"]  # the run goes on with the settings it started with
        mcfg, lcfg, tcfg, ecfg = config["model"], config["loss"], config["train"], config["eval"]
    elif ckpt_path.exists():
        raise NctoolError(f"{out_dir} already holds a run; continue it with --resume or choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        write_json(config, out_dir / "config.json")

    seed = tcfg["seed"]
    torch.manual_seed(seed)
    model = create_model(mcfg["name"], pretrained=mcfg["pretrained"] or None, mask_padding=mcfg["mask_padding"])
    model.to(dev)
    data = PairData(df, resolve_root(data_path, image_root), model, progress=progress)
    optimizer = build_optimizer(model, tcfg)
    steps_per_epoch = len(train_rows) // world // batch if tcfg["drop_last"] else \
        math.ceil(len(train_rows) / world / batch)
    total_steps = steps_per_epoch * tcfg["epochs"]

    start_epoch, start_batch, global_step, best_mr, rrsitr_on = 0, 0, 0, -1.0, False
    epoch_labels = np.full(len(df), -1)
    crop_state = None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, start_batch, global_step = state["epoch"], state["batch"], state["step"]
        best_mr, epoch_labels, crop_state = state["best_mr"], state["epoch_labels"], state["crop_rng"]
        rrsitr_on = state["rrsitr_on"]
        torch.set_rng_state(state["torch_rng"])
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" and tcfg["amp"] else
                torch.autocast("cpu", dtype=torch.bfloat16) if dev.type == "cpu" and tcfg["amp_cpu"] else nullcontext())
    log = _MetricsLog(out_dir / "metrics.jsonl", global_step if state is not None else None) if rank == 0 else None

    def save(path: Path, epoch: int, next_batch: int, crop_rng) -> None:
        if rank == 0:
            save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "config": config,
                             "epoch": epoch, "batch": next_batch, "step": global_step, "best_mr": best_mr,
                             "rrsitr_on": rrsitr_on, "epoch_labels": epoch_labels, "crop_rng": crop_rng,
                             "torch_rng": torch.get_rng_state()}, path)

    summary = {"out_dir": str(out_dir), "notes": notes, "epochs": []}
    try:
        with _stop_on_sigint() as stop:
            for epoch in range(start_epoch, tcfg["epochs"]):
                if start_batch == 0 and not rrsitr_on and lcfg["kind"] == "rrsitr" \
                        and epoch >= lcfg["infonce_warmup_epochs"]:
                    rrsitr_on = _learned_share(epoch_labels[train_rows], world) >= lcfg["warmup_min_learned"]
                use_rrsitr = rrsitr_on
                order = epoch_order(seed, epoch, train_rows)[rank::world]
                crop_rng = torch.Generator().manual_seed(seed * 100_003 + epoch)
                if crop_state is not None:
                    crop_rng.set_state(crop_state)
                    crop_state = None
                if start_batch == 0:
                    epoch_labels[:] = -1
                model.train()
                started = time.perf_counter()
                for b in range(start_batch, steps_per_epoch):
                    rows = order[b * batch:(b + 1) * batch]
                    images, tokens = data.batch(rows, train=True, generator=crop_rng)
                    images, tokens = images.to(dev, non_blocking=True), tokens.to(dev, non_blocking=True)
                    with autocast:
                        loss, details = batch_loss(ddp_model, images, tokens, lcfg, use_rrsitr)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg["grad_clip"])
                    lr = tcfg["lr"] * lr_factor(global_step, tcfg["warmup_steps"], total_steps)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    optimizer.step()
                    global_step += 1
                    pair_loss = details["loss"].detach().float().cpu()
                    g1, g2 = losses.recipe_thresholds(lcfg, len(rows))
                    labels = losses.split_by_loss(pair_loss, g1, g2).numpy()
                    epoch_labels[rows] = labels
                    if log:
                        log.write({"step": global_step, "epoch": epoch + 1, "loss": loss.item(), "lr": lr,
                                   "grad_norm": float(grad_norm), "objective": "rrsitr" if use_rrsitr else "infonce",
                                   **{f"batch_{n}": int((labels == i).sum()) for i, n in enumerate(losses.LABEL_NAMES)}})
                    progress(b + 1, steps_per_epoch, f"epoch {epoch + 1}/{tcfg['epochs']}")
                    if stop["stop"]:
                        save(ckpt_path, epoch, b + 1, crop_rng.get_state())
                        raise TrainingInterrupted(ckpt_path, epoch, b + 1)
                start_batch = 0
                if world > 1:  # each rank binned its own rows (-1 elsewhere): gather the whole epoch
                    gathered = torch.from_numpy(epoch_labels)
                    dist.all_reduce(gathered, op=dist.ReduceOp.MAX)
                    epoch_labels = gathered.numpy()
                seconds = time.perf_counter() - started
                record = {"step": global_step, "epoch": epoch + 1, "kind": "epoch", "seconds": seconds,
                          "pairs_per_s": steps_per_epoch * batch * world / max(seconds, 1e-9),
                          **_split_quality(epoch_labels[train_rows], None if truth is None else truth[train_rows])}
                if len(split_rows["val"]):
                    val = evaluate_retrieval(model, data, split_rows["val"], ecfg, dev, progress, "validate")
                    record.update({f"val_{k}": v for k, v in val.items()})
                    improved = val["mr"] > best_mr
                    best_mr = max(best_mr, val["mr"])
                else:
                    improved = True
                if world > 1:
                    dist.barrier()
                save(ckpt_path, epoch + 1, 0, None)
                if improved:
                    save(best_path, epoch + 1, 0, None)
                    record["best"] = True
                if log:
                    log.write(record)
                summary["epochs"].append(record)
    finally:
        if log:
            log.close()

    if len(split_rows["test"]) and rank == 0:
        best = read_checkpoint(best_path)
        model.load_state_dict(best["model"])
        summary["test"] = evaluate_retrieval(model, data, split_rows["test"], ecfg, dev, progress, "test")
        summary["best_epoch"] = best["epoch"]
        write_json(summary, out_dir / "results.json")
    return summary
