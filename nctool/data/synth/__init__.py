"""Procedural demo data: top-down remote-sensing-like scenes, each with 5 captions.

Every image is drawn from its own random generator, seeded by (seed, image index), so a dataset
is byte-identical for a given seed whatever the batching. A scene function (scenes.py) draws one
scene class (airport, river, parking lot, ...) with random layout, counts, colours and positions
onto a canvas (canvas.py), mostly from shared pieces (pieces.py), and returns the *facts* that are
visible in it ("three white planes" + "parked in the lower right"). Captions are then written from
those facts with varied templates and synonyms (captions.py), so two images of the same class
usually get distinguishable captions and every stated detail can be checked in the picture.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from nctool.data.synth.canvas import Canvas
from nctool.data.synth.captions import CAPTIONS_PER_IMAGE, Fact, could_write, write_captions
from nctool.data.synth.scenes import SCENES
from nctool.errors import NctoolError
from nctool.progress import Progress
from nctool.schema import SPLITS, check_output, write_table

__all__ = ["CAPTIONS_PER_IMAGE", "CATEGORIES", "check_options", "generate", "render", "synthesize", "true_of_image"]

# In name order, whatever the order the scenes are declared in: image i is of class i % len(CATEGORIES).
CATEGORIES = sorted(SCENES)


def _draw(index: int, size: int, seed: int) -> tuple[str, Canvas, list[Fact], tuple[str, ...], np.random.Generator]:
    """Image `index` drawn: its class, canvas, facts, scene nouns, and its generator, ready for the captions."""
    category = CATEGORIES[index % len(CATEGORIES)]
    rng = np.random.default_rng([seed, index])  # one stream per image: independent of batching
    canvas = Canvas(size, rng)
    draw, nouns = SCENES[category]
    return category, canvas, draw(canvas, rng), nouns, rng


def render(index: int, *, size: int = 64, seed: int = 0) -> tuple[str, bytes, list[str]]:
    """Image `index` of the dataset for `seed`: (class, PNG bytes, captions). Classes take turns."""
    category, canvas, facts, nouns, rng = _draw(index, size, seed)
    return category, canvas.png(), write_captions(nouns, facts, rng)


def true_of_image(caption: str, index: int, *, size: int = 64, seed: int = 0) -> bool:
    """Whether `caption` states only what is visible in image `index` of the dataset for (`size`, `seed`):
    the caption writer could have written it from that image's facts. A caption moved from another
    image of the same class is sometimes true of its new image, and then no detector should flag it."""
    _, _, facts, nouns, _ = _draw(index, size, seed)
    return could_write(caption, facts, nouns)


def _assign_splits(categories: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> list[str]:
    """A split per image: the overall fractions exactly (to one image), spread evenly over classes.

    Images are visited class by class in random order and dealt out by smooth weighted
    round-robin: each split earns its fraction per image, and the one most in credit gets it.
    """
    out = [""] * len(categories)
    credit = np.zeros(len(SPLITS))
    for i in np.lexsort((rng.random(len(categories)), categories)):
        credit += fractions
        k = int(np.argmax(credit))
        credit[k] -= 1
        out[i] = SPLITS[k]
    return out


def check_options(n_images: int, size: int, splits: Sequence[float]) -> None:
    """Raise NctoolError (one line) unless generate() can work with these options."""
    if n_images < 10:
        raise NctoolError(f"images: {n_images} is too few; ask for at least 10 so that every split gets some")
    if not 32 <= size <= 256:
        raise NctoolError(f"size: {size} px is out of range; choose 32 to 256 (64 is the default)")
    if (len(splits) != 3 or min(splits) < 0 or splits[0] <= 0 or abs(sum(splits) - 1) > 1e-6):
        shown = ", ".join(f"{name}={f:.3g}" for name, f in zip(SPLITS, splits))
        raise NctoolError(f"splits: {shown} is not a valid split; fractions must be between 0 and 1, "
                          f"add up to 1, and leave some for train")


def generate(n_images: int, *, size: int = 64, seed: int = 0, splits: Sequence[float] = (0.8, 0.1, 0.1),
             progress: Progress | None = None) -> pd.DataFrame:
    """A demo dataset in nctool's schema: n_images synthetic scenes, CAPTIONS_PER_IMAGE captions each.

    Same arguments, same bytes.

    Parameters
    ----------
    n_images
        Number of images, at least 10; image i is of class CATEGORIES[i % len(CATEGORIES)].
    size
        Image width and height in pixels, 32 to 256.
    seed
        Random seed; each image is drawn from its own stream, so the first images do not depend on
        how many are asked for.
    splits
        The train / val / test fractions, by image.
    progress
        Called as images are drawn.
    """
    check_options(n_images, size, splits)
    categories = np.arange(n_images) % len(CATEGORIES)
    split_of = _assign_splits(categories, np.asarray(splits, float), np.random.default_rng(seed))
    rows = []
    for i in range(n_images):
        category, png, captions = render(i, size=size, seed=seed)
        image_id = f"synth/{i:06d}"
        image = {"bytes": png, "path": None}
        rows += [{"pair_id": f"{image_id}#{k}", "image_id": image_id, "image": image, "caption": caption,
                  "split": split_of[i], "category": category} for k, caption in enumerate(captions)]
        if progress and ((i + 1) % 64 == 0 or i + 1 == n_images):
            progress(i + 1, n_images, "synth")
    return pd.DataFrame(rows)


def synthesize(out: str | os.PathLike, *, images: int, size: int, seed: int, splits: Sequence[float],
               overwrite: bool = False, progress: Progress | None = None) -> dict:
    """Generate a demo dataset and write it to `out` (atomically); returns a summary of what was written.

    Parameters
    ----------
    out
        Parquet file to write (its folder is created); refused if it is a folder (schema.check_output).
    images, size, seed, splits, progress
        As n_images, size, seed, splits and progress of `generate`; checked before any work.
    overwrite
        Replace `out` when it exists (otherwise it is refused, as `nctool inject` does).

    Returns
    -------
    dict
        "path": the file written; "file_size": its size in bytes; "splits": one row per split and a
        last "total" row, each with the split's name and its numbers of images, pairs and classes.
    """
    out = check_output(out, overwrite=overwrite)
    df = generate(images, size=size, seed=seed, splits=splits, progress=progress)
    write_table(df, out)
    return {"path": out, "file_size": out.stat().st_size, "splits": _split_rows(df)}


def _split_rows(df: pd.DataFrame) -> list[dict]:
    per_image = df.drop_duplicates("image_id")
    rows = [{"split": s, "images": int((per_image["split"] == s).sum()), "pairs": int((df["split"] == s).sum()),
             "classes": per_image.loc[per_image["split"] == s, "category"].nunique()} for s in SPLITS]
    rows.append({"split": "total", "images": len(per_image), "pairs": len(df),
                 "classes": per_image["category"].nunique()})
    return rows
