"""The word tagger: a small CNN that reads from an image which attribute words its captions would use.

Hard noise, a caption of another image of the same scene class, names the right kind of things with
the wrong counts, colours and places (issue 19). A contrastive model at this size does not learn
them: telling scene kinds apart is enough to win its loss. A tagger is taught them directly: for
each image, the share of its captions that use each ATTRIBUTE_WORD (multi-label, binary cross-
entropy), on a corpus whose captions can be trusted. The `attributes` detector then asks, for each
word a caption uses, how much likelier the tagger finds it in this image than in the other images of
its kind of scene (`image_word_probabilities`).

The network keeps the layout of its last feature map (flattened, not pooled): "on the left" and "in
the upper right" are positions. Its checkpoint holds the weights, the vocabulary and the words' base
rates, loadable with `weights_only=True` like every nctool checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from nctool.data.images import resolve_root
from nctool.data.words import ImageWords, attribute_sets, word_shares
from nctool.errors import NctoolError
from nctool.model.batches import decode_images
from nctool.model.checkpoint import TAGGER_KEY, load_payload, save_checkpoint
from nctool.progress import Progress, silent
from nctool.schema import check_values, column_names, iter_batches, read_table


class WordTagger(nn.Module):
    """Pixels [B, 3, S, S] in [0, 1] -> one logit per vocabulary word; S a multiple of 8."""

    def __init__(self, words: int, image_size: int):
        super().__init__()
        if image_size % 8:
            raise NctoolError(f"tagger image size {image_size}: must be a multiple of 8")

        def conv(inputs: int, outputs: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(inputs, outputs, 3, padding=1), nn.BatchNorm2d(outputs), nn.ReLU())

        self.features = nn.Sequential(conv(3, 32), conv(32, 32), nn.MaxPool2d(2), conv(32, 64), conv(64, 64),
                                      nn.MaxPool2d(2), conv(64, 128), nn.MaxPool2d(2), conv(128, 64))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * (image_size // 8) ** 2, words))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(pixels))


@dataclass
class Tagger:
    """A trained tagger with its vocabulary and the words' base rates (mean target over its training images)."""

    network: WordTagger
    vocab: tuple[str, ...]
    base_rate: np.ndarray  # [words]
    image_size: int

    def probabilities(self, pixels: torch.Tensor, *, batch_size: int = 256,
                      device: torch.device | str = "cpu") -> np.ndarray:
        """[images, words] float64: the chance that a caption of each image (uint8 pixels) uses each word."""
        network = self.network.to(device).eval()
        parts = []
        with torch.no_grad():
            for start in range(0, len(pixels), batch_size):
                batch = pixels[start:start + batch_size].to(device).float().div(255)
                parts.append(torch.sigmoid(network(batch)).double().cpu())
        return torch.cat(parts).numpy() if parts else np.zeros((0, len(self.vocab)))

    def save(self, dest: str | os.PathLike, facts: dict) -> Path:
        saved = {"state": self.network.state_dict(), "vocab": list(self.vocab), "image_size": self.image_size,
                 "base_rate": torch.from_numpy(self.base_rate), **facts}
        return save_checkpoint({TAGGER_KEY: saved}, dest)


def load_tagger(path: str | os.PathLike) -> Tagger:
    """The tagger in checkpoint `path` (written by `nctool train-tagger`); a one-line error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise NctoolError(f"tagger {path}: not found; train one with `nctool train-tagger DATA --out {path}`")
    payload = load_payload(path, fix="give a file written by `nctool train-tagger`")
    saved = payload.get(TAGGER_KEY) if isinstance(payload, dict) else None
    if not isinstance(saved, dict):
        raise NctoolError(f"tagger {path}: not a word tagger (a retrieval checkpoint?); give a file written by "
                          "`nctool train-tagger`")
    try:
        network = WordTagger(len(saved["vocab"]), saved["image_size"])
        network.load_state_dict(saved["state"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise NctoolError(f"tagger {path}: damaged ({exc.__class__.__name__}); train it again with "
                          "`nctool train-tagger`") from None
    return Tagger(network.eval(), tuple(saved["vocab"]), saved["base_rate"].double().numpy(), saved["image_size"])


def _images(frame: pd.DataFrame, root: Path, size: int, progress: Progress) -> tuple[np.ndarray, torch.Tensor]:
    """(each row's image code, uint8 pixels [images, 3, size, size] in code order)."""
    codes, _ = pd.factorize(frame["image_id"])
    first = frame["image"].iloc[frame["image_id"].drop_duplicates().index].tolist()
    return codes, decode_images(first, root, size, progress=progress)


def train_tagger(data_path: str | os.PathLike, out: str | os.PathLike, *, epochs: int = 12, batch_size: int = 64,
                 lr: float = 2e-3, min_count: int = 20, image_size: int = 64, seed: int = 0,
                 image_root: str | os.PathLike | None = None, device: str | None = None,
                 progress: Progress = silent) -> dict:
    """Train a WordTagger on the train split of `data_path` (captions you trust: a clean corpus) and write it
    to `out`. The vocabulary: the ATTRIBUTE_WORDS its captions use at least `min_count` times. Returns a
    summary: images, words, the last epoch's training loss and the val split's loss (None without one).
    """
    from nctool.runtime import pick_device

    for name, value, least in (("epochs", epochs, 1), ("batch size", batch_size, 2), ("min count", min_count, 1),
                               ("image size", image_size, 8)):
        if value < least:
            raise NctoolError(f"{name} {value}: must be at least {least}")
    if image_size % 8:
        raise NctoolError(f"image size {image_size}: must be a multiple of 8 (the tagger halves it three times)")
    if not lr > 0:
        raise NctoolError(f"lr {lr:g}: must be above 0")
    frame = read_table(data_path, columns=["pair_id", "image_id", "image", "caption", "split"])
    check_values(frame, str(data_path))  # an empty caption is refused here as by every command
    train, val = (frame[frame["split"] == split].reset_index(drop=True) for split in ("train", "val"))
    counts = pd.Series([w for words in attribute_sets(train["caption"]) for w in words], dtype=object).value_counts()
    vocab = tuple(sorted(counts.index[counts >= min_count]))
    if not vocab or train["image_id"].nunique() < batch_size:
        raise NctoolError(f"{data_path}: its train split has {train['image_id'].nunique()} images and "
                          f"{len(vocab)} attribute words used {min_count} times or more; a tagger needs at least "
                          f"{batch_size} images (--batch-size) and one such word: give a larger corpus")
    root = resolve_root(data_path, image_root)
    codes, pixels = _images(train, root, image_size, progress)
    targets = torch.from_numpy(word_shares(train["caption"], codes, vocab))
    dev = pick_device(device)
    torch.manual_seed(seed)
    network = WordTagger(len(vocab), image_size).to(dev)
    optimizer = torch.optim.AdamW(network.parameters(), lr, weight_decay=1e-4)
    steps = len(pixels) // batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * steps)
    order = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        network.train()
        total = 0.0
        for rows in torch.randperm(len(pixels), generator=order)[:steps * batch_size].view(steps, batch_size):
            loss = F.binary_cross_entropy_with_logits(network(pixels[rows].to(dev).float().div(255)),
                                                      targets[rows].to(dev))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        progress(epoch + 1, epochs, "train tagger")
    tagger = Tagger(network.cpu().eval(), vocab, targets.double().mean(0).numpy(), image_size)
    val_loss = None
    if len(val):
        val_codes, val_pixels = _images(val, root, image_size, silent)
        predicted = torch.from_numpy(tagger.probabilities(val_pixels))
        val_loss = F.binary_cross_entropy(predicted, torch.from_numpy(word_shares(val["caption"], val_codes, vocab))
                                          .double()).item()
    facts = {"images": len(pixels), "words": len(vocab), "train_loss": total / steps, "val_loss": val_loss}
    tagger.save(out, facts)
    return {"out": str(out), "epochs": epochs, **facts}


def image_word_probabilities(tagger: Tagger, data_path: str | os.PathLike, image_ids: np.ndarray, *,
                             image_root: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                             batch_size: int = 4096, progress: Progress = silent) -> ImageWords:
    """What `tagger` reads in the image of each pair (`image_ids`, one per pair, all in `data_path`), and the
    reading each word is weighed against: with a `category` column, the tagger's mean reading over these
    images of the pair's category, so that only what sets this image apart from its kind of scene counts (a
    caption of a similar image names the right kind of things: on the demo's category noise the words
    weighed against their base rate caught 0.72 of it by AUROC, against their category 0.80); without one,
    or for an image without a category, the base rate of the tagger's corpus. The file is streamed
    `batch_size` rows at a time, so only one batch's images are decoded at once."""
    wanted = pd.Index(pd.unique(np.asarray(image_ids)))
    columns = ["image_id", "image", *(["category"] if "category" in column_names(data_path) else [])]
    root = resolve_root(data_path, image_root)
    read = np.zeros((len(wanted), len(tagger.vocab)))
    seen, kinds = np.zeros(len(wanted), dtype=bool), np.full(len(wanted), None, dtype=object)
    for batch in iter_batches(data_path, columns=columns, batch_size=batch_size):
        batch = batch.drop_duplicates("image_id")
        at = wanted.get_indexer(batch["image_id"])
        first = at >= 0
        first[first] = ~seen[at[first]]  # an image read in an earlier batch is not read again
        if not first.any():
            continue
        batch, at = batch[first].reset_index(drop=True), at[first]
        pixels = decode_images(batch["image"].tolist(), root, tagger.image_size)  # one row per image here
        read[at], seen[at] = tagger.probabilities(pixels, device=device), True
        if "category" in batch:
            kinds[at] = batch["category"].to_numpy()
        progress(int(seen.sum()), len(wanted), "read images with the tagger")
    if not seen.all():
        raise NctoolError(f"{data_path}: image '{wanted[~seen][0]}' is not in the file; read the file the pairs "
                          f"are from")
    reference = np.broadcast_to(tagger.base_rate, read.shape).copy()
    codes = pd.factorize(pd.Series(kinds))[0]  # -1: no category
    for kind in range(codes.max() + 1):
        reference[codes == kind] = read[codes == kind].mean(0)
    at = wanted.get_indexer(np.asarray(image_ids))
    return ImageWords(tagger.vocab, reference[at], read[at])
