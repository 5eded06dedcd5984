"""A matching head over a frozen model's tokens: does it tell an image's own caption from a same-class one? (issue 19)

The head reads the caption's tokens against the image's patch tokens (one cross-attention layer, its
text tokens attending to the patches, then a small MLP on their mean) and says match or not. It is
trained on a clean corpus (the demo base's) with the model frozen: each caption against its image
(match), a caption of another image of the same class (a hard negative) and a caption of another
class. Then, with no further training:

- within-class AUROC on clean images it never saw (own captions against the class's others);
- detection AUROC on category noise (a noisy pair's caption is another image's of the same class).

    .venv/bin/python benchmarks/itm_probe.py CHECKPOINT TRAIN_CORPUS CLEAN_TARGET NOISY_TARGET [--steps 1500]
        [--joint-epochs N]

With `--joint-epochs N` the model is not frozen: model and head train together for N epochs on the
corpus, InfoNCE on the global embeddings plus the head's match loss, in batches of 4 groups of 25
pairs of one class each (`train.classes_per_batch`), each image's hard negative a caption of another
image of its group; the global within-class figures (benchmarks/hard_noise.py) are printed too.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nctool.data.images import resolve_root
from nctool.detect.measure import ModelSource
from nctool.metrics import detection_metrics
from nctool.model.batches import PairData, encode_dataset
from nctool.model.losses import infonce_loss
from nctool.model.train import epoch_order
from nctool.model.transforms import preprocess_for
from nctool.schema import read_table


class MatchHead(nn.Module):
    """Text tokens attend to image patches; the mean of the attended text tokens -> a match logit."""

    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        self.attend = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU(), nn.Linear(dim, 1))

    def forward(self, patches: torch.Tensor, words: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attend(words, patches, patches)
        mixed = self.norm(words + attended)
        keep = (~padding).unsqueeze(-1).float()
        pooled = (mixed * keep).sum(1) / keep.sum(1).clamp(min=1)
        contrast = (words * keep).sum(1) / keep.sum(1).clamp(min=1)
        return self.out(torch.cat([pooled, contrast * pooled], -1)).squeeze(-1)


def encode(model, path: Path, split: str | None):
    frame = read_table(path)
    if split:
        frame = frame[frame["split"] == split]
    frame = frame.reset_index(drop=True)
    data = PairData(frame, resolve_root(path, None), preprocess_for(model))
    encoded = encode_dataset(model, data, local=True)
    first = frame.drop_duplicates("image_id").set_index("image_id")
    image_class = first.loc[encoded.image_ids, "category"].to_numpy()
    return frame, encoded, data.tokens == 0, image_class


def draws(rng, caption_image, image_class, n):
    """n (image, caption, label) triples: a third matches, a third same-class others, a third other classes."""
    captions = rng.integers(0, len(caption_image), n)
    images = caption_image[captions].copy()
    label = np.ones(n, dtype=np.float32)
    caption_class = image_class[caption_image]
    by_class = {c: np.flatnonzero(caption_class == c) for c in np.unique(caption_class)}
    for k in range(n):
        kind = k % 3
        if kind == 0:
            continue
        own_image = caption_image[captions[k]]
        pool = by_class[caption_class[captions[k]]] if kind == 1 else np.arange(len(caption_image))
        while True:
            other = pool[rng.integers(0, len(pool))]
            if caption_image[other] != own_image:
                break
        captions[k], label[k] = other, 0.0
    return images, captions, label


def logits(head, encoded, padding, images, captions, batch=512):
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            i, c = images[start:start + batch], captions[start:start + batch]
            out.append(head(encoded.image_local[i], encoded.text_local[c], padding[c]))
    return torch.cat(out).numpy()


def joint(model, head, corpus_path: Path, epochs: int, seed: int) -> None:
    """Train model and head together: InfoNCE on the global embeddings plus the head's match loss on each
    pair, its image with a caption of another image of the same class, and with a caption of another class."""
    frame = read_table(corpus_path)
    frame = frame[frame["split"] == "train"].reset_index(drop=True)
    data = PairData(frame, resolve_root(corpus_path, None), preprocess_for(model))
    classes, images = frame["category"].to_numpy(), frame["image_id"].to_numpy()
    optimiser = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=1e-4, weight_decay=0.1)
    model.train()
    for epoch in range(epochs):
        start, losses = time.perf_counter(), []
        order = epoch_order(seed, epoch, np.arange(len(frame)), classes=classes, images=images, batch_size=100,
                            classes_per_batch=4)
        for begin in range(0, len(order) - 99, 100):
            rows = order[begin:begin + 100]
            pixels, tokens = data.batch(rows, train=True)
            image_global, image_local = model.encode_image(pixels)
            text_global, text_local = model.encode_text(tokens)
            contrastive, _ = infonce_loss(image_global @ text_global.T)
            same = np.array([_partner(rows, k, classes, images, same_class=True) for k in range(len(rows))])
            other = np.array([_partner(rows, k, classes, images, same_class=False) for k in range(len(rows))])
            padding = tokens == 0
            index = np.r_[np.arange(len(rows)), same, other]
            picture = np.r_[np.arange(len(rows)), np.arange(len(rows)), np.arange(len(rows))]
            label = torch.cat([torch.ones(len(rows)), torch.zeros(2 * len(rows))])
            usable = torch.from_numpy(index >= 0)
            match = head(image_local[picture[index >= 0]], text_local[index[index >= 0]], padding[index[index >= 0]])
            matching = F.binary_cross_entropy_with_logits(match, label[usable])
            loss = contrastive / 4 + matching
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append((contrastive.item(), matching.item()))
        mean = np.mean(losses, axis=0)
        print(f"joint epoch {epoch + 1}: infonce {mean[0]:.2f}, match {mean[1]:.3f}, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    model.eval()


def _partner(rows, k, classes, images, *, same_class: bool) -> int:
    """A batch position whose caption is of another image, of the same class as row k's (or of another); -1: none."""
    fits = [j for j in range(len(rows)) if images[rows[j]] != images[rows[k]]
            and (classes[rows[j]] == classes[rows[k]]) == same_class]
    return fits[(k * 7919) % len(fits)] if fits else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("checkpoint", "corpus", "clean", "noisy"):
        parser.add_argument(name, type=Path)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--joint-epochs", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model, _ = ModelSource(checkpoint=args.checkpoint).load("cpu")
    head = MatchHead(model.encode_text(torch.zeros(1, 32, dtype=torch.long))[1].shape[-1])
    if args.joint_epochs:
        joint(model, head, args.corpus, args.joint_epochs, args.seed)
        from hard_noise import within_class

        _, clean, _, clean_class = encode(model, args.clean, "train")
        similarity = (clean.image_global @ clean.text_global.T).numpy()
        print("global, after joint training:", within_class(similarity, clean.caption_image_index.numpy(),
                                                            clean_class))
    _, corpus, corpus_padding, corpus_class = encode(model, args.corpus, None)
    optimiser = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
    caption_image = corpus.caption_image_index.numpy()
    start = time.perf_counter()
    for step in range(args.steps):
        images, captions, label = draws(rng, caption_image, corpus_class, 192)
        loss = F.binary_cross_entropy_with_logits(
            head(corpus.image_local[images], corpus.text_local[captions], corpus_padding[captions]),
            torch.from_numpy(label))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 500 == 0:
            print(f"step {step} loss {loss.item():.3f}", flush=True)
    print(f"head trained: {args.steps} steps in {time.perf_counter() - start:.0f} s")
    head.eval()
    # within-class AUROC on clean unseen images
    _, clean, clean_padding, clean_class = encode(model, args.clean, "train")
    ci = clean.caption_image_index.numpy()
    images, captions, truth = [], [], []
    for image in range(len(clean.image_ids)):
        same = np.flatnonzero(clean_class[ci] == clean_class[image])
        images += [image] * len(same)
        captions += same.tolist()
        truth += (ci[same] == image).tolist()
    scores = logits(head, clean, clean_padding, np.array(images), np.array(captions))
    print(f"within-class AUROC (clean, unseen images): {detection_metrics(np.array(truth), scores)['auroc']:.3f}")
    # category noise: each pair as given
    frame, noisy, noisy_padding, _ = encode(model, args.noisy, "train")
    pair_scores = logits(head, noisy, noisy_padding, noisy.caption_image_index.numpy(), np.arange(len(frame)))
    auroc = detection_metrics(frame["noisy"].to_numpy(bool), -pair_scores)["auroc"]
    print(f"category-noise detection AUROC: {auroc:.3f} ({frame['noisy'].mean():.2f} noisy)")


if __name__ == "__main__":
    main()
