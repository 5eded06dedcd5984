"""Score every pair of a dataset with one trained model and a set of detectors (`nctool score`).

The model embeds each scored pair once; the detectors (nctool.detectors) all read that same
`Evidence`. The input is streamed a row group at a time: each chunk's unique images are decoded
(nctool.data.PairData) and embedded in batches of `batch_size` rows, and local (token-level)
features live only for the batch at hand. What is kept per pair is a few numbers (similarity, loss)
plus, only when the `neighbors` detector runs, the pair's global image and caption embeddings
(N x D floats each, e.g. 2 x 100,000 x 512 x 4 B = 410 MB), which its neighbour search needs; they
are kept on the scoring device (GPU memory under CUDA), where that O(N^2) search then runs.

The rrsitr loss without batch-order effects: a training batch makes a pair's loss depend on the
pairs it was batched with. Here every pair is measured against the same reference pool: the R
scored pairs (default 1000, all when fewer) with the smallest hash of (seed, pair_id), embedded once
with local features. For each pair, `repeats` reference batches of B - 1 pool pairs (B = the
checkpoint's training batch size, the pair itself excluded) are drawn by a generator seeded from the
pair's own hash, and the pair's loss in each batch is exactly losses.per_pair_loss of its row there
(`reference_losses`). The loss is the mean over the batches (`loss_std` keeps their spread). Nothing
depends on file order or on which other pairs were scored in the same chunk. When the pool is
smaller than B, the reference batch shrinks to the pool size and the thresholds follow it
(losses.thresholds_for_batch).

Output: one Parquet in long format, one row per (pair, detector), sorted by pair_id within each
detector, with `detector` naming the detector (docs/schema.md, "Scores").
"""

from __future__ import annotations

import hashlib
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from nctool import losses
from nctool.checkpoint import load_trained_model
from nctool.data import PairData, Progress, encode_dataset
from nctool.detectors import Evidence, make_detectors
from nctool.errors import NctoolError
from nctool.images import resolve_root
from nctool.metrics import detection_metrics, label_metrics
from nctool.model import RetrievalModel, local_similarity
from nctool.schema import SPLITS, iter_batches, read_table, write_table
from nctool.train import pick_device


def pair_hashes(pair_ids: Sequence[str], seed: int) -> np.ndarray:
    """A 64-bit hash (blake2b) of (seed, pair_id) per pair, as uint64: picks the pool, seeds the draws."""
    return np.array([int.from_bytes(hashlib.blake2b(f"{seed}\0{pair_id}".encode(), digest_size=8).digest(), "little")
                     for pair_id in pair_ids], dtype=np.uint64)


def reference_batches(hashes: np.ndarray, own_position: np.ndarray, pool_size: int, size: int,
                      repeats: int) -> torch.Tensor:
    """Pool positions of each pair's reference batches, LongTensor [n, repeats, size].

    Each batch holds `size` distinct pool pairs, never the pair itself (`own_position`: its place in
    the pool, -1 when it is not there); the draws come from numpy's default generator seeded with the
    pair's hash, so they depend on nothing but the pair.
    """
    keys = np.stack([np.random.default_rng(int(h)).random((repeats, pool_size)) for h in hashes])
    in_pool = np.flatnonzero(own_position >= 0)
    keys[in_pool, :, own_position[in_pool]] = np.inf
    return torch.from_numpy(np.argpartition(keys, size - 1, axis=-1)[..., :size])


def reference_losses(rows: dict, pool: dict, batches: torch.Tensor, loss_cfg: dict) -> torch.Tensor:
    """Per-pair loss of each row in each of its reference batches, [n, repeats].

    `rows` and `pool` are nctool.data.encode_dataset outputs (same device as `batches`). For row i
    and a batch J of pool pairs this equals losses.per_pair_loss(...)[0] on the batch (i, J), with
    the logits nctool.train.batch_loss builds: global logit_scale * cosine, local
    local_scale * local_similarity; only row i's row and column of those matrices are computed.
    """
    rows_image = rows["image_global"][rows["caption_image_index"]]
    pool_image = pool["image_global"][pool["caption_image_index"]]
    scale = loss_cfg["logit_scale"]
    positive = scale * (rows_image * rows["text_global"]).sum(-1)
    loss = (_cross_entropy(positive, scale * rows_image @ pool["text_global"].T, batches)
            + _cross_entropy(positive, scale * rows["text_global"] @ pool_image.T, batches))
    if loss_cfg["use_local"]:
        scale = loss_cfg["local_scale"]
        own = local_similarity(rows["text_local"], rows["image_local"])  # [rows, row images]
        positive = scale * own.gather(1, rows["caption_image_index"][:, None])[:, 0]
        image_to_texts = local_similarity(pool["text_local"], rows["image_local"]).T[rows["caption_image_index"]]
        text_to_images = local_similarity(rows["text_local"], pool["image_local"])[:, pool["caption_image_index"]]
        loss += (_cross_entropy(positive, scale * image_to_texts, batches)
                 + _cross_entropy(positive, scale * text_to_images, batches))
    return loss


def _cross_entropy(positive: torch.Tensor, logits: torch.Tensor, batches: torch.Tensor) -> torch.Tensor:
    """CE of the positive logit [n] among itself and the batch's logits [n, pool]: log(1 + sum exp(neg - pos))."""
    negatives = logits.gather(1, batches.flatten(1)).view(batches.shape)
    return F.softplus((negatives - positive[:, None, None]).logsumexp(-1))


class ReferencePool:
    """The reference pairs' embeddings (encode_dataset output, on the scoring device), in pool order.

    `losses()` measures pairs against reference batches of `min(batch_size, pool)` pairs (the pair
    and batch_size - 1 pool pairs); `thresholds` are losses.thresholds_for_batch for that size.
    """

    def __init__(self, embeddings: dict, pair_ids: Sequence[str], loss_cfg: dict, batch_size: int, repeats: int,
                 seed: int):
        self.embeddings, self.loss_cfg, self.repeats, self.seed = embeddings, loss_cfg, repeats, seed
        self.position = {pair_id: i for i, pair_id in enumerate(pair_ids)}
        self.batch_size = min(batch_size, len(pair_ids))
        if self.batch_size < 2:
            raise NctoolError("rrsitr: 1 scored pair; the loss needs at least 2 pairs to compare")
        self.thresholds = losses.recipe_thresholds(loss_cfg, self.batch_size)

    def losses(self, rows: dict, pair_ids: Sequence[str]) -> torch.Tensor:
        """[n, repeats] losses of these rows (encode_dataset output on the same device) and pair ids."""
        own = np.array([self.position.get(pair_id, -1) for pair_id in pair_ids])
        batches = reference_batches(pair_hashes(pair_ids, self.seed), own, len(self.position), self.batch_size - 1,
                                    self.repeats)
        return reference_losses(rows, self.embeddings, batches.to(rows["text_global"].device), self.loss_cfg)


@dataclass
class _Embedder:
    """encode_dataset with the trained model on the scoring device (bf16 autocast on CUDA); outputs stay there."""

    model: RetrievalModel
    root: Path
    batch_size: int
    device: torch.device

    def data(self, frame: pd.DataFrame) -> PairData:
        return PairData(frame, self.root, self.model)

    def __call__(self, data: PairData, rows: torch.Tensor | None = None, local: bool = False,
                 progress: Progress | None = None) -> dict:
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else nullcontext()
        with autocast:
            embeddings = encode_dataset(self.model, data, rows, batch_size=self.batch_size, device=self.device,
                                        local=local, progress=progress)
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in embeddings.items()}


def score(data_path: str | os.PathLike, checkpoint: str | os.PathLike, out: str | os.PathLike,
          detectors: Sequence[str] = ("rrsitr",), splits: Sequence[str] = ("train",),
          image_root: str | os.PathLike | None = None, batch_size: int = 256, device: str | None = None,
          seed: int = 0, repeats: int = 5, pool_size: int = 1000, keep_fraction: float = 0.6,
          threshold: float | None = None, k: int = 10, progress: Progress | None = None) -> dict:
    """Score the pairs of `splits` with the chosen detectors and write the scores file `out`.

    Returns a summary: `out`, `pairs`, `splits`, `detectors` (per detector: counts per label and,
    when the data has a `noisy` column, auroc / auprc of 1 - reliability and precision / recall / f1
    of the noisy label) and `labels` (nctool.metrics.label_metrics rows per detector; empty without
    ground truth).
    """
    progress = progress or (lambda done, total, description: None)
    chosen = make_detectors(detectors, keep_fraction=keep_fraction, threshold=threshold, k=k, seed=seed)
    splits = list(dict.fromkeys(splits))
    _check_options(splits, batch_size, repeats, pool_size, seed)
    index = read_table(data_path, columns=["pair_id", "split"])
    scored_ids = index.loc[index["split"].isin(splits), "pair_id"].to_numpy()
    if len(scored_ids) == 0:
        present = ", ".join(sorted(index["split"].unique())) or "none"
        raise NctoolError(f"{data_path}: no rows in split {', '.join(splits)}; the file's splits are {present}, "
                          f"choose with --split")
    dev = pick_device(device)
    model, config, _ = load_trained_model(checkpoint, dev)
    embed = _Embedder(model, resolve_root(data_path, image_root), batch_size, dev)
    needs = set().union(*(detector.needs for detector in chosen))
    pool = None
    with torch.inference_mode():
        if "loss" in needs:
            hashes = pair_hashes(scored_ids, seed)
            pool_ids = scored_ids[np.lexsort((scored_ids, hashes))[:pool_size]]
            embeddings = embed(embed.data(_rows_of(data_path, pool_ids)), local=config["loss"]["use_local"],
                               progress=lambda done, total, what: progress(done, total, f"reference pool: {what}"))
            pool = ReferencePool(embeddings, pool_ids, config["loss"], config["train"]["batch_size"], repeats, seed)
        evidence, truth = _collect(data_path, splits, embed, pool, "embeddings" in needs, len(scored_ids), progress)
    frames = []
    for i, detector in enumerate(chosen):
        frames.append(detector.detect(evidence))
        progress(i + 1, len(chosen), "detectors")
    table = pd.concat(frames, ignore_index=True)
    write_table(table, out)
    detector_rows, label_rows = summarize(table, truth)
    return {"out": str(out), "pairs": len(evidence.pair_id), "splits": splits, "detectors": detector_rows,
            "labels": label_rows}


def _check_options(splits: list[str], batch_size: int, repeats: int, pool_size: int, seed: int) -> None:
    unknown = [split for split in splits if split not in SPLITS]
    if unknown or not splits:
        raise NctoolError(f"split '{unknown[0] if unknown else ''}': unknown; choose from {', '.join(SPLITS)}")
    for name, value, least in (("batch size", batch_size, 1), ("repeats", repeats, 1), ("pool", pool_size, 2),
                               ("seed", seed, 0)):
        if value < least:
            raise NctoolError(f"{name} {value}: must be at least {least}")


def _rows_of(data_path: str | os.PathLike, pair_ids: np.ndarray) -> pd.DataFrame:
    """The rows with these pair ids, in that order (one streaming pass)."""
    wanted = set(pair_ids)
    found = pd.concat([chunk[chunk["pair_id"].isin(wanted)] for chunk in iter_batches(data_path)])
    return found.set_index("pair_id").loc[pair_ids].reset_index()


def _collect(data_path, splits: list[str], embed: _Embedder, pool: ReferencePool | None, keep_embeddings: bool,
             total: int, progress: Progress) -> tuple[Evidence, np.ndarray | None]:
    """Stream the scored rows once: (Evidence sorted by pair_id, `noisy` ground truth in that order or None)."""
    ids, image_ids, truth, parts = [], [], [], []
    for chunk in iter_batches(data_path):
        chunk = chunk[chunk["split"].isin(splits)]
        if chunk.empty:
            continue
        data = embed.data(chunk)
        for start in range(0, len(data), embed.batch_size):
            rows = torch.arange(start, min(start + embed.batch_size, len(data)))
            emb = embed(data, rows, local=pool is not None and pool.loss_cfg["use_local"])
            image = emb["image_global"][emb["caption_image_index"]]
            part = {"similarity": (image * emb["text_global"]).sum(-1)}
            if pool is not None:
                loss = pool.losses(emb, data.frame["pair_id"].iloc[start:start + len(rows)].tolist())
                part.update(loss=loss.mean(1), loss_std=loss.std(1, correction=0))
            parts.append({name: value.cpu() for name, value in part.items()})
            if keep_embeddings:  # they stay on the scoring device, where the neighbour search runs
                parts[-1].update(image_global=image, text_global=emb["text_global"])
            progress(len(ids) + start + len(rows), total, "score pairs")
        ids += data.frame["pair_id"].tolist()
        image_ids += data.frame["image_id"].tolist()
        truth.append(chunk["noisy"].to_numpy(dtype=bool) if "noisy" in chunk else None)
    order = torch.from_numpy(np.argsort(np.asarray(ids)))
    fields = {name: torch.cat([part[name] for part in parts])[order.to(parts[0][name].device)] for name in parts[0]}
    numbers = {name: fields.pop(name).double().numpy() for name in ("similarity", "loss", "loss_std") if name in fields}
    order = order.numpy()
    evidence = Evidence(np.asarray(ids)[order], np.asarray(image_ids)[order], **numbers, **fields,
                        loss_thresholds=pool.thresholds if pool is not None else None)
    return evidence, None if truth[0] is None else np.concatenate(truth)[order]


def summarize(table: pd.DataFrame, truth: np.ndarray | None) -> tuple[list[dict], list[dict]]:
    """(one row per detector: label counts and detection metrics; label_metrics rows per detector).

    `truth` is the `noisy` ground truth in the order of each detector's rows, or None.
    """
    detector_rows, label_rows = [], []
    for name, part in table.groupby("detector", sort=False):
        counts = part["label"].value_counts()
        row = {"detector": name, **{label: int(counts.get(label, 0)) for label in losses.LABEL_NAMES}}
        if truth is not None:
            metrics = detection_metrics(truth, 1 - part["reliability"].to_numpy(), part["label"].to_numpy() == "noisy")
            row.update({key: metrics[key] for key in ("auroc", "auprc", "precision", "recall", "f1")})
            label_rows += [{"detector": name, **metrics} for metrics in label_metrics(truth, part["label"].to_numpy())]
        detector_rows.append(row)
    return detector_rows, label_rows
