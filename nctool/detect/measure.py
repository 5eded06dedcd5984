"""Measuring pairs: the model choice, the reference pool, and the per-chunk kernel every scoring path shares.

`ModelSource` names the model (a checkpoint of `nctool train`, or an open_clip model with weights and
a recipe) and builds it once; `PoolSpec` sets the reference pool; `Embedder` embeds rows of the data
file; `measure` turns one chunk of rows into per-pair numbers (similarity, rrsitr loss and its
spread, optionally the global embeddings); `assemble_evidence` joins the chunks into the detectors'
`Evidence`. Direct scoring (nctool.detect.score), the shard store (nctool.detect.shards) and the Ray
actors (nctool.detect.ray) all run these same functions, so their numbers agree exactly.

The rrsitr loss without batch-order effects: a training batch makes a pair's loss depend on the
pairs it was batched with. Here every pair is measured against the same reference pool: the R
scored pairs (default 1000, all when fewer) with the smallest hash of (seed, pair_id), embedded once
with local features (and measured then: the stream does not embed them again). For each pair,
`repeats` reference batches of B - 1 pool pairs (B = the recipe's training batch size, the pair
itself excluded) are drawn: runs of the pool in `repeats` orders seeded by the run's seed, from
starts the pair's own hash picks (reference_batches). The pair's loss in each batch is exactly
losses.per_pair_loss of its row there (`reference_losses`, on the logits of nctool.model.objectives, as
training computes them); the loss is the mean over the batches (`loss_std` keeps their spread). Nothing
depends on file order or on which other pairs were scored in the same chunk. When the pool is
smaller than B, the reference batch shrinks to the pool size and the thresholds follow it
(losses.recipe_thresholds).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from nctool import runtime
from nctool.config import ZERO_SHOT_RECIPE, LossCfg, Recipe, load_recipe
from nctool.detect.detectors import Evidence
from nctool.errors import NctoolError
from nctool.model import losses
from nctool.model.batches import Encoded, PairData, encode_dataset
from nctool.model.clip import LocalGrams, RetrievalModel, create_model, load_trained_model
from nctool.model.objectives import global_similarity, local_logits
from nctool.model.train import FOLDS_FILE
from nctool.model.transforms import Preprocess, preprocess_for
from nctool.progress import Progress
from nctool.schema import Fingerprint, check_unique_ids, column_names, iter_batches, pair_hashes, row_hash_values

# The reference pool's local Grams (model.LocalGrams: images + captions, D*(D+1)/2*4 B each, so 1 GB for a
# 1000-pair ViT-B/32 pool) are kept on the scoring device when they fit this; otherwise every chunk recomputes them.
POOL_GRAM_BUDGET_BYTES = 2**31
DECOY_STREAM = np.uint64(0x5DEECE66D)  # mixed into a pair's hash to draw its decoy's caption apart from its batches
SAME_SCENE_STREAM = np.uint64(0x2545F4914F6CDD1D)  # the same for its same-scene decoy
CHUNK_ROWS = 4096  # rows decoded at a time: a row group is streamed in slices of at most this many


def reference_orders(seed: int, pool_size: int, repeats: int) -> np.ndarray:
    """One random order of the pool's positions per repeat, [repeats, pool_size], seeded by the run's seed."""
    rng = np.random.default_rng([seed, pool_size, repeats])
    return np.stack([rng.permutation(pool_size) for _ in range(repeats)])


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer (wrapping uint64 arithmetic): spreads consecutive integers over all 64 bits."""
    z = values.astype(np.uint64)
    for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        z = (z ^ (z >> np.uint64(shift))) * np.uint64(factor)
    return z ^ (z >> np.uint64(31))


def reference_batches(hashes: np.ndarray, own_position: np.ndarray, orders: np.ndarray, size: int) -> torch.Tensor:
    """Pool positions of each pair's reference batches, LongTensor [n, repeats, size].

    Batch r of a pair is `size` consecutive pool pairs of `orders[r]` (reference_orders), from a
    start that the pair's hash picks, stepping over the pair itself (`own_position`: its place in
    the pool, -1 when it is not there). So each batch is a uniform draw of distinct pool pairs that
    depends on nothing but the pair, and drawing costs a few integer operations per member.
    """
    repeats, pool_size = orders.shape
    start = (_mix64(hashes[:, None] + np.arange(repeats, dtype=np.uint64)) % np.uint64(pool_size)).astype(np.int64)
    rank = np.argsort(orders, axis=1)  # rank[r, p]: where pool position p sits in orders[r]
    own_offset = np.where(own_position[:, None] >= 0, (rank[:, own_position].T - start) % pool_size, pool_size)
    steps = np.arange(size) + (np.arange(size) >= own_offset[..., None])   # skip the pair's own place
    return torch.from_numpy(orders[np.arange(repeats)[:, None], (start[..., None] + steps) % pool_size])


def training_logits(loss_cfg: LossCfg) -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The logits training uses, by part (nctool.model.objectives): "global" (logit_scale * global_similarity)
    and, when the recipe has the local term, "local" (local_logits); each maps (images, texts) to [images, texts]."""
    logits = {"global": lambda image, text: loss_cfg.logit_scale * global_similarity(image, text)}
    if loss_cfg.use_local:
        logits["local"] = lambda image, text: local_logits(image, text, loss_cfg)
    return logits


def row_logits(rows: Encoded, pool: Encoded, loss_cfg: LossCfg) -> dict[str, torch.Tensor]:
    """Each row's image against every pool caption, [n, pool] per kind of logits (training_logits): the
    costly part of a row's losses, shared by the pair's and its decoys' (`reference_losses`)."""
    own = rows.caption_image_index
    return {part: logits(rows.side("image", part), pool.side("text", part))[own]
            for part, logits in training_logits(loss_cfg).items()}


def reference_losses(rows: Encoded, pool: Encoded, batches: torch.Tensor, loss_cfg: LossCfg,
                     decoys: tuple[torch.Tensor, dict] | None = None,
                     image_to_texts: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Per-pair loss of each row in each of its reference batches, [n, repeats].

    `rows` and `pool` are nctool.model.batches.Encoded (same device as `batches`). For row i
    and a batch J of pool pairs this equals losses.per_pair_loss(...)[0] on the batch (i, J), with
    the logits training uses (training_logits); only row i's row and column of those matrices are
    computed. With `decoys` (partner, cross): the loss of row i's image paired with the caption of pool
    pair partner[i] instead of its own, `cross[part]` being the pool's logits [pool images, pool pairs].
    `image_to_texts`: the rows' `row_logits` when the caller has them already (computed here when None).
    """
    image_to_texts = row_logits(rows, pool, loss_cfg) if image_to_texts is None else image_to_texts
    return sum(_two_way_loss(logits, rows, pool, part, batches, decoys, image_to_texts[part])
               for part, logits in training_logits(loss_cfg).items())


def _two_way_loss(logits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], rows: Encoded, pool: Encoded,
                  part: str, batches: torch.Tensor, decoys: tuple[torch.Tensor, dict] | None,
                  image_to_texts: torch.Tensor) -> torch.Tensor:
    """CE image -> text plus CE text -> image of each row against its batches, for one kind of logits.

    `logits(images, texts)` is [images, texts]; `part` picks the embeddings ("global" or "local");
    `image_to_texts` is that part of `row_logits`.
    """
    own = rows.caption_image_index
    if decoys is None:
        positive = logits(rows.side("image", part), rows.side("text", part))[own, torch.arange(len(own),
                                                                                                device=own.device)]
        text_to_images = logits(pool.side("image", part), rows.side("text", part)).T[:, pool.caption_image_index]
    else:  # the caption is a pool pair's: its logits against the pool's images are the pool's own
        partner, cross = decoys
        positive = image_to_texts.gather(1, partner[:, None])[:, 0]
        text_to_images = cross[part].T[partner][:, pool.caption_image_index]
    return _cross_entropy(positive, image_to_texts, batches) + _cross_entropy(positive, text_to_images, batches)


def _cross_entropy(positive: torch.Tensor, logits: torch.Tensor, batches: torch.Tensor) -> torch.Tensor:
    """CE of the positive logit [n] among itself and the batch's logits [n, pool]: log(1 + sum exp(neg - pos))."""
    negatives = logits.gather(1, batches.flatten(1)).view(batches.shape)
    return F.softplus((negatives - positive[:, None, None]).logsumexp(-1))


def reference_batch_size(batch_size: int, pool_pairs: int) -> int:
    """Pairs per reference batch (the pair and batch_size - 1 pool pairs): `batch_size`, or the pool's size
    when smaller."""
    if min(batch_size, pool_pairs) < 2:
        raise NctoolError("rrsitr: 1 scored pair; the loss needs at least 2 pairs to compare")
    return min(batch_size, pool_pairs)


def pool_ids(scored_ids: np.ndarray, seed: int, pool_size: int) -> np.ndarray:
    """The reference pool: the `pool_size` scored pairs with the smallest hash of (seed, pair_id), in that order."""
    return scored_ids[np.lexsort((scored_ids, pair_hashes(scored_ids, seed)))[:pool_size]]


class ReferencePool:
    """The reference pairs' embeddings (an Encoded, on the scoring device), in pool order.

    With the local term, the pool's local tokens are replaced by their Grams (model.LocalGrams)
    when those fit POOL_GRAM_BUDGET_BYTES, so that each chunk of scored rows does not rebuild them.

    `losses()` measures pairs against reference batches of `min(batch_size, pool)` pairs (the pair
    and batch_size - 1 pool pairs); `thresholds` are losses.recipe_thresholds for that size. The
    pool's pairs are scored pairs too: `members` holds their measure_batch output and global
    embeddings, measured here from the pool's own embeddings, so `measure` does not embed them again;
    nor their images (`images`, with the image tokens when the recipe has the local term: P*D*4 B
    an image, 0.1 GB for 1000 ViT-B/32 images).
    """

    def __init__(self, embeddings: Encoded, pair_ids: Sequence[str], *, loss_cfg: LossCfg, batch_size: int,
                 repeats: int, seed: int):
        self.embeddings, self.loss_cfg, self.repeats, self.seed = embeddings, loss_cfg, repeats, seed
        # the pool's logits [pool images, pool pairs], from the tokens: a decoy's caption is a pool pair's
        self.cross = {part: logits(embeddings.side("image", part), embeddings.side("text", part))
                      for part, logits in training_logits(loss_cfg).items()}
        self.pair_images = np.asarray(embeddings.image_ids)[embeddings.caption_image_index.cpu().numpy()]
        self.pair_categories = embeddings.categories  # the pool pairs' `category`, when the data has one
        # the pool's images as encode_dataset's `known`: a scored pair of a pool image does not embed it again
        # (without the captions' tokens, which only their Grams keep)
        self.images = dataclasses.replace(embeddings, text_global=None, text_local=None)
        tokens = (embeddings.image_local, embeddings.text_local)
        if loss_cfg.use_local and sum(LocalGrams.nbytes(t) for t in tokens) <= POOL_GRAM_BUDGET_BYTES:
            # every chunk of scored rows meets the same pool: its Grams once, not per chunk (same results)
            self.embeddings = dataclasses.replace(embeddings, image_local=LocalGrams(tokens[0]),
                                                  text_local=LocalGrams(tokens[1]))
        self.position = {pair_id: i for i, pair_id in enumerate(pair_ids)}
        self.batch_size = reference_batch_size(batch_size, len(pair_ids))
        self.thresholds = losses.recipe_thresholds(loss_cfg, self.batch_size)
        self.orders = reference_orders(seed, len(pair_ids), repeats)
        self.members = measure_batch(self.embeddings, self, list(pair_ids), keep_embeddings=True)

    def losses(self, rows: Encoded, pair_ids: Sequence[str],
               image_to_texts: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """[n, repeats] losses of these rows (embedded on the same device) and pair ids (`image_to_texts`: their
        row_logits against this pool, when the caller has them)."""
        own = np.array([self.position.get(pair_id, -1) for pair_id in pair_ids])
        batches = reference_batches(pair_hashes(pair_ids, self.seed), own, self.orders, self.batch_size - 1)
        return reference_losses(rows, self.embeddings, batches.to(rows.text_global.device), self.loss_cfg,
                                image_to_texts=image_to_texts)

    def partners(self, pair_ids: Sequence[str], image_ids: np.ndarray,
                 categories: np.ndarray | None = None) -> np.ndarray:
        """Pool positions of the captions that make each pair's decoy: a start the pair's hash picks, then the
        next pool pair of another image (the pool's order is random), so a decoy depends on the pair alone.
        With `categories`, the next pool pair of another image of the pair's own category (a same-scene
        decoy); -1 where the pool holds none."""
        size = len(self.pair_images)
        stream = DECOY_STREAM if categories is None else SAME_SCENE_STREAM
        start = (_mix64(pair_hashes(pair_ids, self.seed) ^ stream) % np.uint64(size)).astype(np.int64)

        def unfit(at: np.ndarray, rows) -> np.ndarray:
            bad = self.pair_images[at] == image_ids[rows]
            return bad if categories is None else bad | (self.pair_categories[at] != categories[rows])

        partner = start.copy()
        left = np.flatnonzero(unfit(partner, slice(None)))
        for step in range(1, size):
            if not len(left):
                return partner
            partner[left] = (start[left] + step) % size
            left = left[unfit(partner[left], left)]
        if categories is not None:
            partner[left] = -1
        elif len(left):
            raise NctoolError("decoys: every pair of the reference pool shows the same image; scoring needs pairs "
                              "of at least 2 images")
        return partner

    def decoys(self, rows: Encoded, pair_ids: Sequence[str],
               image_to_texts: dict[str, torch.Tensor] | None = None) -> dict:
        """Each row's decoys, its image with a pool caption of another image (`partners`), measured as the pair
        would be: `decoy_similarity` and `decoy_loss` (the mean over the same reference batches, the partner
        left out of them), and `decoy_partner`, the caption's pool position; [n] each, on the rows' device.
        The same, prefixed `scene_`, for a caption of another image of the pair's category (the decoys of
        hard noise), when the data has a `category` column: NaN and -1 where the pool holds no such caption,
        and everywhere without the column. `image_to_texts` as for `losses`."""
        if image_to_texts is None:
            image_to_texts = row_logits(rows, self.embeddings, self.loss_cfg)
        image_ids = np.asarray(rows.image_ids)[rows.caption_image_index.cpu().numpy()]
        categories = rows.categories if self.pair_categories is not None else None
        image, out = rows.image_global[rows.caption_image_index], {}
        for prefix, chosen in (("", None), ("scene_", categories)):
            if prefix and chosen is None:
                none = torch.full((len(pair_ids),), float("nan"), device=rows.text_global.device)
                out.update(scene_decoy_similarity=none, scene_decoy_loss=none,
                           scene_decoy_partner=torch.full((len(pair_ids),), -1, device=none.device))
                continue
            partner = self.partners(pair_ids, image_ids, chosen)
            found = partner >= 0
            taken = torch.from_numpy(np.where(found, partner, 0)).to(rows.text_global.device)
            batches = reference_batches(pair_hashes(pair_ids, self.seed), np.where(found, partner, -1), self.orders,
                                        self.batch_size - 1)
            loss = reference_losses(rows, self.embeddings, batches.to(taken.device), self.loss_cfg,
                                    (taken, self.cross), image_to_texts).mean(1)
            similarity = (image * self.embeddings.text_global[taken]).sum(-1)
            missing = torch.from_numpy(~found).to(taken.device)
            out.update({f"{prefix}decoy_similarity": similarity.masked_fill(missing, float("nan")),
                        f"{prefix}decoy_loss": loss.masked_fill(missing, float("nan")),
                        f"{prefix}decoy_partner": taken.masked_fill(missing, -1)})
        return out

    def to(self, device: torch.device | str) -> ReferencePool:
        """This pool with its tensors on `device` (a Ray actor receives the driver's pool)."""
        moved = copy.copy(self)
        moved.cross = {part: value.to(device) for part, value in self.cross.items()}
        moved.embeddings, moved.images = self.embeddings.to(device), self.images.to(device)
        moved.members = {name: value.to(device) if isinstance(value, torch.Tensor) else value
                         for name, value in self.members.items()}
        return moved


@dataclass
class Embedder:
    """encode_dataset with the scoring model on the scoring device (bf16 autocast on CUDA); outputs stay there."""

    model: RetrievalModel
    preprocess: Preprocess
    root: Path
    batch_size: int
    device: torch.device

    @classmethod
    def of(cls, model: RetrievalModel, root: Path, batch_size: int, device: torch.device) -> Embedder:
        """The Embedder of `model` with its own eval transform (nctool.model.transforms.preprocess_for)."""
        return cls(model, preprocess_for(model), Path(root), batch_size, device)

    def data(self, frame: pd.DataFrame) -> PairData:
        return PairData(frame, self.root, self.preprocess)

    def __call__(self, data: PairData, rows: torch.Tensor | None = None, local: bool = False,
                 progress: Progress | None = None, known: Encoded | None = None) -> Encoded:
        with runtime.autocast(self.device):
            embeddings = encode_dataset(self.model, data, rows, batch_size=self.batch_size, device=self.device,
                                        local=local, progress=progress, known=known)
        return embeddings.to(self.device)


NO_MODEL = ("no model given; give --checkpoint runs/NAME/best.pt (trained by `nctool train`) or --model NAME (any "
            "open_clip model, zero-shot; --pretrained FILE for its weights)")


@dataclass(frozen=True)
class ModelSource:
    """The model that scores, checked once when made: a checkpoint of `nctool train` (its model and recipe),
    or, zero-shot, an open_clip model name (ViT-B-32, nctool-tiny, ...) with its weights and a recipe.

    `pretrained` (with `model` only): an open_clip tag, an open_clip checkpoint file or an nctool
    checkpoint (nctool.model.clip.create_model); None for random init. `recipe` (with `model` only): a
    recipe name, TOML path or loaded Recipe for the loss settings, the reference batch size
    (train.batch_size) and model.mask_padding; default ZERO_SHOT_RECIPE.
    """

    checkpoint: str | os.PathLike | None = None
    model: str | None = None
    pretrained: str | os.PathLike | None = None
    recipe: str | os.PathLike | Recipe | None = None

    def __post_init__(self):
        if self.checkpoint is None and self.model is None:
            raise NctoolError(NO_MODEL)
        if self.checkpoint is not None and self.model is not None:
            raise NctoolError("--checkpoint and --model: both given; give one (--checkpoint scores with a trained "
                              "model, --model zero-shot)")
        if self.checkpoint is not None and (self.pretrained is not None or self.recipe is not None):
            raise NctoolError(f"--{'pretrained' if self.pretrained is not None else 'recipe'}: only with --model "
                              f"(a checkpoint brings its own weights and recipe); drop it, or score zero-shot with "
                              f"--model")

    @classmethod
    def from_flags(cls, checkpoint=None, model=None, pretrained=None, recipe=None) -> ModelSource | None:
        """The source the command-line flags name; None when none is given (score from embeddings alone)."""
        if all(value is None for value in (checkpoint, model, pretrained, recipe)):
            return None
        return cls(checkpoint, model, pretrained, recipe)

    @property
    def files(self) -> tuple:
        """The files this source reads (None where it reads none): an output must not replace them."""
        return self.checkpoint, self.pretrained

    def resolved(self) -> ModelSource:
        """This source with its existing files as absolute paths (Ray actors may run in another folder)."""
        def absolute(value):
            if value is None or isinstance(value, Recipe) or not Path(value).exists():
                return value
            return str(Path(value).resolve())
        return ModelSource(absolute(self.checkpoint), self.model, absolute(self.pretrained), absolute(self.recipe))

    def fold_runs(self) -> tuple[list[ModelSource], dict] | None:
        """An out-of-fold run (a folder of `nctool train --folds K`): one source per fold and its folds.json;
        None for a single model."""
        if self.checkpoint is None or not Path(self.checkpoint).is_dir():
            return None
        manifest_path = Path(self.checkpoint) / FOLDS_FILE
        if not manifest_path.is_file():
            raise NctoolError(f"--checkpoint {self.checkpoint}: a folder without {FOLDS_FILE}; give a checkpoint "
                              f"file (runs/NAME/best.pt) or a folder written by `nctool train --folds K`")
        manifest = json.loads(manifest_path.read_text())
        return [ModelSource(checkpoint=Path(self.checkpoint) / run) for run in manifest["runs"]], manifest

    def load(self, device: torch.device | str = "cpu") -> tuple[RetrievalModel, Recipe]:
        """The model (in eval mode, on `device`) and the recipe whose loss settings it scores with."""
        if self.checkpoint is not None:
            trained, settings, _ = load_trained_model(self.checkpoint, device)
            return trained, settings
        settings = self.recipe if isinstance(self.recipe, Recipe) else load_recipe(self.recipe or ZERO_SHOT_RECIPE)
        return (create_model(self.model, self.pretrained, mask_padding=settings.model.mask_padding).to(device).eval(),
                settings)


@dataclass(frozen=True)
class PoolSpec:
    """The reference pool the rrsitr loss is measured against, checked when made.

    `seed` picks the pool and orders its batches (and seeds the detectors' draws, Evidence.seed);
    `repeats` reference batches per pair, the loss being their mean; `pool_size` pairs in the pool.
    """

    seed: int = 0
    repeats: int = 5
    pool_size: int = 1000

    def __post_init__(self):
        for name, value, least in (("seed", self.seed, 0), ("repeats", self.repeats, 1), ("pool", self.pool_size, 2)):
            check_at_least(name, value, least)


def check_at_least(name: str, value: int, least: int) -> None:
    if value < least:
        raise NctoolError(f"{name} {value}: must be at least {least}")


@dataclass
class DataIndex:
    """What scoring reads of the data file before any work: one streaming pass over a few columns."""

    scored_ids: np.ndarray             # pair ids of the scored splits, in file order (fixed-width str)
    fingerprint: str | None = None     # schema.Fingerprint of the whole file, when asked
    captions: pd.Series | None = None  # the scored pairs' captions by pair_id, when asked (suggestions)
    image_ids: np.ndarray | None = None  # the scored pairs' image ids, in scored_ids' order, with the fingerprint


def read_index(data_path: str | os.PathLike, splits: list[str], *, fingerprint: bool = False,
               captions: bool = False) -> DataIndex:
    """Stream the file once, a batch at a time: refuse an empty caption, an unknown split, a repeated
    pair id or no row in `splits`, and keep only the scored pair ids (plus what is asked for), so
    that what this holds grows by a few bytes a pair."""
    columns = ["pair_id", "split", "caption"]
    if fingerprint:
        columns += ["image_id"] + ["decision"] * ("decision" in column_names(data_path))
    digest = Fingerprint() if fingerprint else None
    every, scored, kept, images, present = [], [], [], [], set()
    for frame in iter_batches(data_path, columns=columns):  # checks each batch's captions and splits
        ids = frame["pair_id"].to_numpy(str)
        present.update(frame["split"].unique())
        chosen = frame["split"].isin(splits).to_numpy()
        every.append(ids)
        scored.append(ids[chosen])
        if captions:
            kept.append(frame["caption"].to_numpy()[chosen])
        if digest is not None:
            digest.update(frame)
            images.append(frame["image_id"].to_numpy(str)[chosen])
    check_unique_ids(np.concatenate(every), str(data_path))
    scored_ids = np.concatenate(scored)
    if len(scored_ids) == 0:
        present = ", ".join(sorted(present)) or "none"
        raise NctoolError(f"{data_path}: no rows in split {', '.join(splits)}; the file's splits are {present}, "
                          f"choose with --split")
    return DataIndex(scored_ids, digest.hexdigest() if digest is not None else None,
                     pd.Series(np.concatenate(kept), index=scored_ids) if captions else None,
                     np.concatenate(images) if digest is not None else None)


def _rows_of(data_path: str | os.PathLike, pair_ids: np.ndarray) -> pd.DataFrame:
    """The rows with these pair ids, in that order (one streaming pass)."""
    wanted = set(pair_ids)
    found = pd.concat([chunk[chunk["pair_id"].isin(wanted)] for chunk in iter_batches(data_path)])
    return found.set_index("pair_id").loc[pair_ids].reset_index()


def pool_embeddings(embed: Embedder, data_path: str | os.PathLike, ids: np.ndarray, local: bool,
                    progress: Progress) -> Encoded:
    """The reference pool's embeddings (on the scoring device), in the order of `ids`."""
    frame = _rows_of(data_path, ids)
    out = embed(embed.data(frame), local=local,
                progress=lambda done, total, what: progress(done, total, f"reference pool: {what}"))
    if "category" in frame:  # same-scene decoys draw their captions by it
        out.categories = frame["category"].to_numpy(object)
    return out


def build_pool(embed: Embedder, data_path: str | os.PathLike, ids: np.ndarray, settings: Recipe, pool: PoolSpec,
               progress: Progress) -> ReferencePool:
    """The reference pool of the pairs `ids`, embedded and measured with `embed`, under the recipe's loss."""
    with torch.inference_mode():  # no other reference to the embeddings: cached Grams free the tokens
        return ReferencePool(pool_embeddings(embed, data_path, ids, settings.loss.use_local, progress), ids,
                             loss_cfg=settings.loss, batch_size=settings.train.batch_size, repeats=pool.repeats,
                             seed=pool.seed)


def scored_chunks(data_path: str | os.PathLike, splits: list[str], row_group: int) -> Iterator[pd.DataFrame]:
    """The rows of `splits` in one row group of the data file, in file order, in slices of at most CHUNK_ROWS.

    Direct scoring and every shard of `nctool embed` cut the data this way, so a pair meets the
    same batch in both and gets the same embedding to the last bit.
    """
    for chunk in iter_batches(data_path, batch_size=CHUNK_ROWS, row_groups=[row_group]):
        chunk = chunk[chunk["split"].isin(splits)]
        if not chunk.empty:
            yield chunk


def measure_batch(emb: Encoded, pool: ReferencePool | None, pair_ids: list[str], *, keep_embeddings: bool) -> dict:
    """The per-pair numbers of one batch of embedded rows (on the scoring device).

    `similarity` and, with a pool, `loss`, `loss_std` and the decoys' (ReferencePool.decoys) as float32 CPU
    tensors; with
    `keep_embeddings`, each pair's global `image_global` and `text_global` [n, D] (left on the device).
    """
    image = emb.image_global[emb.caption_image_index]
    part = {"similarity": (image * emb.text_global).sum(-1)}
    if pool is not None:
        image_to_texts = row_logits(emb, pool.embeddings, pool.loss_cfg)  # once for the pair and both its decoys
        loss = pool.losses(emb, pair_ids, image_to_texts)
        part.update(loss=loss.mean(1), loss_std=loss.std(1, correction=0),
                    **pool.decoys(emb, pair_ids, image_to_texts))
    part = {name: value.float().cpu() if value.is_floating_point() else value.cpu() for name, value in part.items()}
    if keep_embeddings:
        part.update(image_global=image.float(), text_global=emb.text_global.float())
    return part


def measure(embed: Embedder, pool: ReferencePool | None, frame: pd.DataFrame, *, keep_embeddings: bool,
            progress: Callable[[int], None] | None = None) -> dict:
    """Embed one chunk of scored rows and measure each pair: the one home of the per-pair work.

    Returns, in the rows' order: `pair_id`, `image_id`, `row_hash` (schema.row_hash_values) and, when the
    frame has it, `noisy` (numpy arrays), then measure_batch's values. Pairs of the reference pool
    are not embedded again: their values are the pool's `members`. `progress(rows done)` after each batch.
    """
    ids = frame["pair_id"].to_numpy(str)
    member = (np.array([pool.position.get(pair_id, -1) for pair_id in ids]) if pool is not None
              else np.full(len(ids), -1))
    fresh = np.flatnonzero(member < 0)
    data = embed.data(frame.iloc[fresh].reset_index(drop=True)) if len(fresh) else None
    parts = []
    categories = frame["category"].to_numpy(object)[fresh] if "category" in frame else None
    for start in range(0, len(fresh), embed.batch_size):
        rows = torch.arange(start, min(start + embed.batch_size, len(fresh)))
        emb = embed(data, rows, local=pool is not None and pool.loss_cfg.use_local,
                    known=pool.images if pool is not None else None)
        if categories is not None:
            emb.categories = categories[rows.numpy()]
        parts.append(measure_batch(emb, pool, ids[fresh[rows.numpy()]].tolist(), keep_embeddings=keep_embeddings))
        if progress:
            progress(start + len(rows))
    if len(fresh) < len(ids):
        taken = torch.from_numpy(member[member >= 0])
        parts.append({name: value[taken.to(value.device)] for name, value in pool.members.items()
                      if keep_embeddings or name not in ("image_global", "text_global")})
        if progress:
            progress(len(ids))
    back = torch.from_numpy(np.argsort(np.concatenate([fresh, np.flatnonzero(member >= 0)])))  # -> frame order
    return {"pair_id": ids, "image_id": frame["image_id"].to_numpy(str), "row_hash": row_hash_values(frame),
            **({"noisy": frame["noisy"].to_numpy(dtype=bool)} if "noisy" in frame else {}),
            **{name: torch.cat([part[name] for part in parts])[back.to(parts[0][name].device)] for name in parts[0]}}


def assemble_evidence(parts: list[dict], *, loss_thresholds: tuple[float, float] | None, seed: int,
                      pool_pair_ids: np.ndarray) -> tuple[Evidence, dict]:
    """The Evidence of `measure` outputs (in any order), sorted by pair_id, and, in the same order, each
    pair's `row_hash` (uint64) and, when the data has it, its `noisy` ground truth (numpy arrays).
    `pool_pair_ids` (the reference pool, in pool order) turns the decoys' pool positions into rows of
    the evidence (Evidence.decoy_caption).

    `parts` is emptied field by field as it is read, so that at most two copies of a field exist at a time.
    """
    def joined(name: str):
        values = [part.pop(name) for part in parts]
        return torch.cat(values) if isinstance(values[0], torch.Tensor) else np.concatenate(values)

    def sorted_(values):
        return values[torch.from_numpy(order).to(values.device)] if isinstance(values, torch.Tensor) else values[order]

    ids = joined("pair_id")
    order = np.argsort(ids)
    ids = ids[order]
    names = list(parts[0])
    fields = {name: sorted_(joined(name)) for name in names}
    facts = {name: fields.pop(name) for name in ("row_hash", "noisy") if name in fields}
    numbers = {name: fields.pop(name).double().numpy()
               for name in ("similarity", "loss", "loss_std", "decoy_similarity", "decoy_loss",
                            "scene_decoy_similarity", "scene_decoy_loss") if name in fields}
    if "scene_decoy_loss" in numbers and np.isnan(numbers["scene_decoy_loss"]).all():  # no `category`: none
        del numbers["scene_decoy_similarity"], numbers["scene_decoy_loss"]
    image_id = fields.pop("image_id")
    captions = {}
    for kind in ("decoy", "scene_decoy"):
        partner = fields.pop(f"{kind}_partner", None)
        if partner is not None and f"{kind}_loss" in numbers:
            # pool pairs are scored pairs: each decoy's caption is a row of the evidence (-1: no decoy)
            partner = np.asarray(partner.cpu() if isinstance(partner, torch.Tensor) else partner, dtype=np.int64)
            rows = np.searchsorted(ids, np.asarray(pool_pair_ids)[np.maximum(partner, 0)])
            captions[f"{kind}_caption"] = np.where(partner >= 0, rows, -1)
    evidence = Evidence(ids, image_id, **numbers, **fields, **captions, loss_thresholds=loss_thresholds, seed=seed)
    return evidence, facts
