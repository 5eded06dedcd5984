"""Synthetic noisy correspondence: move captions onto rows of other images, with ground truth.

Every kind picks some rows (or images) of each noised split and permutes their captions among
themselves, so no caption is lost: `caption_source` names the row each caption came from, and
the original caption of row r is the one now on the row whose `caption_source` is r. A row is
`noisy` when its caption was written for another image (judged by image, not by row: a caption
landing on a sibling row of its own image is clean), so the realised noisy share can sit a little
below the requested rate. Splits that are not noised are copied with their captions untouched.

Kinds (N = rows of the split):
- `caption-shuffle`: round(rate*N) rows, their captions permuted by a plain random permutation.
- `image-shuffle`: round(rate*images) images; the images are permuted, so rows of image A get the
  captions of image pi(A), in file order (DECL/RCL). Images only swap with images that have the
  same number of captions, so an image whose count is unique among the chosen stays clean.
- `category`: round(rate*N) rows, drawn among rows whose category (scene class) has 2 or more
  images in the split; each category's chosen rows swap captions among themselves so that no row
  gets a caption of its own image (see `_shuffle`). Where one image holds more than half of its
  category's chosen rows that is impossible, and the fewest possible of its rows stay clean.
- `rrsitr`: the reference benchmark, exactly: `np.random.RandomState(seed)` seeded once, then
  for ratio in 0.2, 0.4, 0.6, 0.8 in that order `idx = choice(N, int(N*ratio), replace=False)`
  and the captions at idx are permuted with `shuffle`, each ratio on the clean captions. All four
  draws are always made, so rate 0.4 alone gives the same file as 0.4 asked with the others.

Randomness: each (split, rate) starts afresh from the seed (a numpy Generator; RandomState for
`rrsitr`), so an output does not depend on which other rates or splits were asked for.

Files (`inject_files`, behind `nctool inject`): one per rate, named by `noised_name` after the
exact rate and the seed, so no two requests share a file and nothing is replaced unasked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nctool.errors import NctoolError
from nctool.progress import Progress, silent
from nctool.schema import SPLITS, check_output, check_splits, image_root, read_table, write_table

NOISE_COLUMNS = ("noisy", "caption_source", "noise_kind", "noise_rate")
RRSITR_RATES = (0.2, 0.4, 0.6, 0.8)


@dataclass(frozen=True)
class SplitStats:
    split: str
    rows: int
    rate: float   # requested rate (0 for a split left untouched)
    chosen: int   # rows picked to take part in the permutation
    noisy: int    # rows whose caption now belongs to another image

    @property
    def noisy_share(self) -> float:
        return self.noisy / self.rows


@dataclass(frozen=True)
class NoisedFile:
    path: Path
    rate: float
    stats: list[SplitStats]


def inject(df: pd.DataFrame, rate: float, kind: str, *, seed: int = 42,
           splits: Sequence[str] = ("train",)) -> tuple[pd.DataFrame, list[SplitStats]]:
    """One noised copy of df (see the module docstring); stats per split present in df."""
    [(_, out, stats)] = inject_many(df, [rate], kind, seed=seed, splits=splits)
    return out, stats


def inject_many(df: pd.DataFrame, rates: Sequence[float], kind: str, *, seed: int = 42,
                splits: Sequence[str] = ("train",), progress: Progress = silent,
                ) -> list[tuple[float, pd.DataFrame, list[SplitStats]]]:
    """A noised copy of df per rate, in the order given; bad input raises NctoolError before any copy.

    Parameters
    ----------
    df
        A clean dataset in nctool's schema.
    rates
        Share of each noised split to noise, each in [0, 1).
    kind
        One of KINDS (see the module docstring).
    seed
        Seed of every (split, rate) draw.
    splits
        The splits to noise; the others are copied untouched.
    progress
        Called once per finished rate (nctool.progress).
    """
    rates, splits = [float(r) for r in rates], check_splits(splits)
    _check(df, rates, kind, seed, splits)
    split_col = df["split"].to_numpy()
    positions = {s: np.flatnonzero(split_col == s) for s in SPLITS if (split_col == s).any()}
    plans = {s: _plan(df.iloc[positions[s]], rates, kind, seed) for s in splits}
    results = []
    for i, rate in enumerate(rates):
        source = np.arange(len(df))
        rate_col = np.zeros(len(df))
        chosen = dict.fromkeys(positions, 0)
        for s, plan in plans.items():
            targets, sources = plan[i]
            pos = positions[s]
            source[pos[targets]] = pos[sources]
            rate_col[pos] = rate
            chosen[s] = len(targets)
        out = _noised(df, source, kind, rate_col)
        stats = [SplitStats(s, len(pos), rate if s in plans else 0.0, chosen[s], int(out["noisy"].iloc[pos].sum()))
                 for s, pos in positions.items()]
        results.append((rate, out, stats))
        progress(i + 1, len(rates), f"{kind} noise")
    return results


def noised_name(stem: str, kind: str, rate: float, seed: int) -> str:
    """File name of one noised copy; repr keeps every digit, so distinct rates get distinct names."""
    return f"{stem}.{kind}-{float(rate)!r}-s{seed}.parquet"


def inject_files(data: str | os.PathLike, *, out: str | os.PathLike, rates: Sequence[float], kind: str,
                 seed: int = 42, splits: Sequence[str] = ("train",), overwrite: bool = False,
                 progress: Progress = silent) -> list[NoisedFile]:
    """Write a noised copy of a dataset file per rate into a folder; refuse before any work.

    Parameters
    ----------
    data
        Dataset Parquet in nctool's schema.
    out
        Folder for the noised files, each named by `noised_name`; created when missing.
    rates, kind, seed, splits
        As in `inject_many`.
    overwrite
        Replace output files that already exist (otherwise they are refused).
    progress
        Called as work advances (nctool.progress).

    Returns
    -------
    One NoisedFile (path, rate, stats per split) per rate, in the order given.
    """
    data, out = Path(data), check_output(out, data, folder=True)
    dests = [out / noised_name(data.stem, kind, rate, seed) for rate in rates]
    if len(set(dests)) < len(dests):
        raise NctoolError(f"--rate {' '.join(f'{float(r)!r}' for r in rates)}: a rate is given twice; "
                          f"give each rate once")
    for dest in dests:
        check_output(dest, data, overwrite=overwrite)
    results = inject_many(read_table(data), rates, kind, seed=seed, splits=splits, progress=progress)
    root = image_root(data)  # the outputs live elsewhere: keep relative image paths resolvable
    for i, ((_, noised, _), dest) in enumerate(zip(results, dests), 1):
        write_table(noised, dest, image_root=root)
        progress(i, len(dests), "writing")
    return [NoisedFile(dest, rate, stats) for (rate, _, stats), dest in zip(results, dests)]


def _check(df: pd.DataFrame, rates: list[float], kind: str, seed: int, splits: list[str]) -> None:
    if kind not in KINDS:
        raise NctoolError(f"kind '{kind}': unknown noise kind; choose one of {', '.join(KINDS)}")
    if not rates:
        raise NctoolError("rates: none given; give at least one rate in [0, 1), e.g. --rate 0.2")
    for rate in rates:
        if not 0 <= rate < 1:
            raise NctoolError(f"rate {rate:g}: outside [0, 1); give the share of rows to noise, e.g. 0.2")
        if kind == "rrsitr" and rate not in RRSITR_RATES:
            raise NctoolError(f"rate {rate:g}: the rrsitr benchmark has only rates "
                              f"{', '.join(map(str, RRSITR_RATES))}; use one of them or another kind")
    if not 0 <= seed < 2**32:
        raise NctoolError(f"seed {seed}: outside [0, 2**32); give a non-negative 32-bit seed")
    present = [c for c in NOISE_COLUMNS if c in df]
    if present:
        raise NctoolError(f"dataset: already noised (has column {', '.join(present)}); "
                          f"inject into the clean dataset instead")
    if kind == "category" and "category" not in df:
        raise NctoolError("dataset: no 'category' column, which the category kind needs; "
                          "ingest the scene classes or choose another kind")
    for split in splits:
        part = df[df["split"] == split]
        unit, count = ("images", part["image_id"].nunique()) if kind == "image-shuffle" else ("rows", len(part))
        if count < 2:
            raise NctoolError(f"split '{split}': {count} {unit}, too few to shuffle (2 or more needed); "
                              f"noise another split")
        if kind == "category" and part["category"].isna().all():
            raise NctoolError(f"split '{split}': column 'category' is empty, which the category kind "
                              f"needs; fill the scene classes or choose another kind")


def _noised(df: pd.DataFrame, source: np.ndarray, kind: str, rate_col: np.ndarray) -> pd.DataFrame:
    """df with row i's caption taken from row source[i], plus the ground-truth columns."""
    image_id = df["image_id"].to_numpy()
    out = df.copy()
    out["caption"] = df["caption"].to_numpy()[source]
    out["noisy"] = image_id[source] != image_id
    out["caption_source"] = df["pair_id"].to_numpy()[source]
    out["noise_kind"] = kind
    out["noise_rate"] = rate_col
    return out


# A plan, per rate, is (targets, sources): positions within the split; the caption of row
# sources[j] moves to row targets[j]. Every kind's sources are a permutation of its targets.
Plan = tuple[np.ndarray, np.ndarray]


def _plan(part: pd.DataFrame, rates: list[float], kind: str, seed: int) -> list[Plan]:
    if kind == "rrsitr":
        return _rrsitr(len(part), rates, seed)
    return [_GENERATOR_KINDS[kind](part, rate, np.random.default_rng(seed)) for rate in rates]


def _caption_shuffle(part: pd.DataFrame, rate: float, rng: np.random.Generator) -> Plan:
    chosen = rng.choice(len(part), round(rate * len(part)), replace=False)
    return chosen, _shuffle(rng, chosen)


def _image_shuffle(part: pd.DataFrame, rate: float, rng: np.random.Generator) -> Plan:
    rows = list(part.groupby("image_id", sort=False).indices.values())  # each image's rows, file order
    chosen = rng.choice(len(rows), round(rate * len(rows)), replace=False)
    sources = _shuffle(rng, chosen, groups=np.array([len(rows[i]) for i in chosen]))

    def rows_of(images: np.ndarray) -> np.ndarray:
        return np.concatenate([rows[i] for i in images] or [np.empty(0, dtype=np.intp)])

    return rows_of(chosen), rows_of(sources)


def _category(part: pd.DataFrame, rate: float, rng: np.random.Generator) -> Plan:
    images_in_category = part.groupby("category")["image_id"].transform("nunique").to_numpy()
    eligible = np.flatnonzero(images_in_category >= 2)  # null category -> NaN -> not eligible
    wanted = round(rate * len(part))
    if wanted > len(eligible):
        raise NctoolError(f"split '{part['split'].iat[0]}': rate {rate:g} needs {wanted} rows but only "
                          f"{len(eligible)} of {len(part)} have a category with 2 or more images; "
                          f"lower the rate or fill the 'category' column")
    chosen = rng.choice(eligible, wanted, replace=False)
    return chosen, _shuffle(rng, chosen, groups=part["category"].to_numpy()[chosen],
                            owners=part["image_id"].to_numpy()[chosen])


def _rrsitr(n: int, rates: list[float], seed: int) -> list[Plan]:
    rs = np.random.RandomState(seed)
    plans = {}
    for ratio in RRSITR_RATES:
        idx = rs.choice(n, int(n * ratio), replace=False)
        sources = idx.copy()
        rs.shuffle(sources)
        plans[ratio] = (idx, sources)
    return [plans[rate] for rate in rates]


def _shuffle(rng: np.random.Generator, items: np.ndarray, groups: np.ndarray | None = None,
             owners: np.ndarray | None = None) -> np.ndarray:
    """A permutation of items (out[j] replaces items[j]) that moves items only within their group.

    Without owners it is a plain random permutation per group (items may stay in place). With
    owners, each group's items are put in a random order that keeps each owner's items together
    (owners in random order, items shuffled within), and every item takes the one m places
    further on, cyclically, where m is the largest owner's count: no item then gets one of its own
    owner's, whenever no owner holds more than half the group (otherwise 2m - size of them do).
    """
    groups = np.zeros(len(items)) if groups is None else groups
    out = items.copy()
    for group in np.unique(groups):
        sel = np.flatnonzero(groups == group)
        if owners is None:
            out[sel] = rng.permutation(items[sel])
            continue
        _, owner = np.unique(owners[sel], return_inverse=True)
        owner_rank = rng.permutation(owner.max() + 1)[owner]
        order = rng.permutation(len(sel))
        ordered = sel[order[np.argsort(owner_rank[order], kind="stable")]]
        out[ordered] = items[np.roll(ordered, -np.bincount(owner).max())]
    return out


_GENERATOR_KINDS = {"caption-shuffle": _caption_shuffle, "image-shuffle": _image_shuffle, "category": _category}
KINDS = (*_GENERATOR_KINDS, "rrsitr")
