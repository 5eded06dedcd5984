"""Pixels and tokens of a dataset, prepared once, served as batches (training and evaluation).

Every unique image is decoded once into a uint8 cache and every caption tokenised once, so a batch
is a gather plus per-image crops of small tensors: a few milliseconds, which is why no DataLoader
worker processes are needed (they would also have to copy or share the cache). The decoding itself
runs in a pool of threads (`decode_workers`): PIL releases the GIL while it decodes and resizes.
Batches are chosen by row indices, so distributed training hands each rank its own index list.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from nctool.data.images import load_image
from nctool.errors import NctoolError
from nctool.model.clip import LocalGrams, RetrievalModel
from nctool.model.transforms import Preprocess
from nctool.progress import Progress

DECODE_WORKERS_VARIABLE = "NCTOOL_DECODE_WORKERS"  # sets decode_workers' default for every command


def decode_workers(requested: int | None = None) -> int:
    """Threads that decode images: `requested`, else $NCTOOL_DECODE_WORKERS, else one per usable CPU.

    Every worker count gives the same pixels; 1 decodes one image at a time.
    """
    if requested is None and DECODE_WORKERS_VARIABLE not in os.environ:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    value = requested if requested is not None else os.environ[DECODE_WORKERS_VARIABLE]
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        source = "decode workers" if requested is not None else DECODE_WORKERS_VARIABLE
        raise NctoolError(f"{source} {value!r}: must be a whole number of at least 1 (threads that decode images; "
                          f"{DECODE_WORKERS_VARIABLE} unset means one per CPU)")
    return workers


class PairData:
    """The rows of a DataFrame in nctool's schema, ready for a model.

    - `pixels`: uint8 [N_images, 3, C, C], one per unique image_id in order of first appearance,
      resized (shorter side to C, bicubic) and centre-cropped; C = `cache_size`, by default the
      preprocessing's image size. Memory is N_images * 3 * C^2 bytes: 4,743 images at 64 px take 58 MB,
      at 224 px 714 MB. Decoded by `decode_workers(workers)` threads.
    - `image_index`: LongTensor [N_rows], the row's image in `pixels`.
    - `tokens`: LongTensor [N_rows, context_length], the row's caption.
    A missing or corrupt image raises the NctoolError of `nctool.data.images.load_image` naming the file.
    """

    def __init__(self, frame: pd.DataFrame, root: str | os.PathLike, preprocess: Preprocess, *,
                 cache_size: int | None = None, workers: int | None = None, progress: Progress | None = None):
        self.frame = frame.reset_index(drop=True)
        codes, image_ids = pd.factorize(self.frame["image_id"])
        self.image_ids = list(image_ids)
        self.image_index = torch.from_numpy(codes).long()
        first_images = self.frame["image"].iloc[self.frame["image_id"].drop_duplicates().index].tolist()
        self.pixels = decode_images(first_images, Path(root), cache_size or preprocess.image_size,
                                    workers=workers, progress=progress)
        self.tokens = preprocess.tokenizer(self.frame["caption"].tolist())
        self.train_transform, self.eval_transform = preprocess.train, preprocess.eval

    def __len__(self) -> int:
        return len(self.frame)

    def batch(self, rows: Sequence[int] | torch.Tensor, train: bool = False,
              generator: torch.Generator | Sequence[torch.Generator] | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(images float normalised [B,3,S,S], tokens [B,T]) of these rows; random crops when training,
        drawn from `generator` or from one generator per row."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        transform = self.train_transform if train else self.eval_transform
        images = transform(self.pixels[self.image_index[rows]], generator=generator)
        return images, self.tokens[rows]


def decode_images(images: list[dict], root: Path, size: int, *, workers: int | None = None,
                  progress: Progress | None = None) -> torch.Tensor:
    """uint8 [len(images), 3, size, size]: each image (the `image` struct) resized, shorter side to `size`
    (bicubic), and centre-cropped, by `decode_workers(workers)` threads."""
    pixels = torch.empty((len(images), 3, size, size), dtype=torch.uint8)
    # threads, not processes: PIL releases the GIL while it decodes and resizes
    with ThreadPoolExecutor(max_workers=decode_workers(workers)) as pool:
        for done, tensor in enumerate(pool.map(lambda image: _decode(image, root, size), images), 1):
            pixels[done - 1] = tensor
            if progress:
                progress(done, len(images), "decode images")
    return pixels


def _decode(image: dict, root: Path, size: int) -> torch.Tensor:
    picture = load_image(image, root)
    picture = TF.center_crop(TF.resize(picture, size, InterpolationMode.BICUBIC), size)
    return TF.pil_to_tensor(picture)


@dataclass
class Encoded:
    """Embedded rows of a dataset (encode_dataset): per unique image and per caption (row).

    `image_global` [Ni, D] and `image_local` [Ni, P, D] per unique image of the rows (ascending cache
    order, ids in `image_ids`); `text_global` [Nc, D] and `text_local` [Nc, T, D] per row, `rows`
    [Nc] and `caption_image_index` [Nc] (the image of each caption, as
    nctool.metrics.retrieval_recalls takes it for scores [Ni, Nc]). The locals are None without the
    local term, and may be their Grams (model.LocalGrams: the scoring's reference pool).
    `categories` [Nc]: the rows' `category`, set by scoring where it draws same-scene decoys.
    """

    rows: torch.Tensor
    image_ids: list[str]
    caption_image_index: torch.Tensor
    image_global: torch.Tensor | None = None
    image_local: torch.Tensor | LocalGrams | None = None
    text_global: torch.Tensor | None = None
    text_local: torch.Tensor | LocalGrams | None = None
    categories: np.ndarray | None = None

    def side(self, kind: str, part: str) -> torch.Tensor | LocalGrams | None:
        """`image_global`, `text_local`, ...: one side ("image" or "text") of one part ("global" or "local")."""
        return getattr(self, f"{kind}_{part}")

    def to(self, device: torch.device | str) -> "Encoded":
        """This record with its tensors (and Grams) on `device`."""
        return dataclasses.replace(self, **{field.name: value.to(device) for field in dataclasses.fields(self)
                                            if isinstance(value := getattr(self, field.name),
                                                          (torch.Tensor, LocalGrams))})


def encode_dataset(model: RetrievalModel, data: PairData, rows: Sequence[int] | torch.Tensor | None = None,
                   batch_size: int = 256, device: str | torch.device | None = None,
                   progress: Progress | None = None, local: bool = True, known: Encoded | None = None) -> Encoded:
    """Embed the images and captions of `rows` (default: all) with the eval transform: an `Encoded` of
    float32 CPU tensors (the locals None when `local` is False).

    Runs on `device` (default: the model's); wrap the call in torch.autocast for mixed precision.
    `known` (images embedded before, with this model and `local`) supplies those images instead of
    the model.
    """
    device = device or next(model.parameters()).device
    rows = torch.arange(len(data)) if rows is None else torch.as_tensor(rows, dtype=torch.long)
    images = torch.unique(data.image_index[rows])  # sorted
    out = Encoded(rows, [data.image_ids[i] for i in images], torch.searchsorted(images, data.image_index[rows]))
    seen = {image_id: i for i, image_id in enumerate(known.image_ids)} if known else {}
    reused = torch.tensor([seen.get(image_id, -1) for image_id in out.image_ids], dtype=torch.long)
    new = images[reused < 0]
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        parts = []
        for start in range(0, len(new), batch_size):
            pixels = data.pixels[new[start:start + batch_size]]
            parts.append(model.encode_image(data.eval_transform(pixels).to(device), local=local))
            if progress:
                progress(min(start + batch_size, len(new)), len(new), "encode images")
        out.image_global, out.image_local = _concat(parts) if parts else (None, None)
        if len(new) < len(images):
            out.image_global, out.image_local = (_place(fresh, reference, reused) for fresh, reference in
                                                 ((out.image_global, known.image_global),
                                                  (out.image_local, known.image_local)))
        parts = []
        for start in range(0, len(rows), batch_size):
            parts.append(model.encode_text(data.tokens[rows[start:start + batch_size]].to(device), local=local))
            if progress:
                progress(min(start + batch_size, len(rows)), len(rows), "encode captions")
        out.text_global, out.text_local = _concat(parts)
    model.train(was_training)
    return out


def _place(fresh: torch.Tensor | None, known: torch.Tensor | None, reused: torch.Tensor) -> torch.Tensor | None:
    """Per image, its `known` row where `reused` points to one (>= 0), else the next `fresh` row (on the CPU)."""
    if known is None:
        return None
    out = torch.empty((len(reused), *known.shape[1:]), dtype=torch.float32)
    taken = reused >= 0
    out[taken] = known[reused[taken].to(known.device)].float().cpu()
    if fresh is not None:
        out[~taken] = fresh
    return out


def _concat(parts: list[tuple]) -> list[torch.Tensor | None]:
    """Concatenate batch outputs field by field onto the CPU (floats as float32); None stays None."""
    fields = []
    for values in zip(*parts):
        if values[0] is None:
            fields.append(None)
            continue
        tensor = torch.cat([value.cpu() for value in values])
        fields.append(tensor.float() if tensor.is_floating_point() else tensor)
    return fields
