"""Drop the pairs a scores file marks (`nctool filter`), as pure DataFrame functions.

`filter_pairs(data, scores)` joins one detector's scores to the dataset on `pair_id` and splits the
rows into kept and dropped. A row is dropped when it is scored and its label is one of `drop` or its
reliability is below `min_reliability`. Only the splits the scores cover are filtered: rows of the
other splits (say val and test, when only train was scored) are kept untouched, with empty score
columns. Score columns replace same-named columns of the dataset (e.g. from an earlier filter run).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from nctool.errors import NctoolError
from nctool.schema import LABELS, SPLITS, check_frame, iter_batches

SCORE_COLUMNS = {"pair_id": pa.string(), "reliability": pa.float64(), "label": pa.string(), "detector": pa.string()}


@dataclass
class FilterResult:
    kept: pd.DataFrame      # dataset rows kept, in file order, with the score columns
    dropped: pd.DataFrame   # dataset rows dropped, same columns
    summary: list[dict]     # per split and label: kept, dropped (and truly noisy shares with ground truth)


def read_scores(path: str | os.PathLike) -> pd.DataFrame:
    """A scores file (long format: several detectors may repeat a pair_id), schema-checked."""
    chunks = list(iter_batches(path, required=SCORE_COLUMNS))
    if not chunks:
        raise NctoolError(f"{path}: holds no scores; write one with `nctool score`")
    return pd.concat(chunks, ignore_index=True)


def filter_pairs(data: pd.DataFrame, scores: pd.DataFrame, drop: Sequence[str] = ("noisy",),
                 min_reliability: float | None = None, detector: str | None = None) -> FilterResult:
    """Kept and dropped rows of `data` by the scores of one detector (see the module docstring).

    `detector` picks the detector's rows when `scores` holds several. Raises NctoolError for a bad
    `drop` label, `min_reliability` outside [0, 1], an ambiguous or unknown detector, duplicate
    pair ids, scores for pairs that are not in `data`, and rows of a scored split without a score.
    """
    for label in drop:
        if label not in LABELS:
            raise NctoolError(f"drop '{label}': not a label; choose from {', '.join(LABELS)}")
    if min_reliability is not None and not 0 <= min_reliability <= 1:
        raise NctoolError(f"min reliability {min_reliability:g}: outside [0, 1]; reliabilities are in [0, 1]")
    scores = _one_detector(scores, detector)
    check_frame(scores, "scores", SCORE_COLUMNS)
    known = scores["pair_id"].isin(data["pair_id"])
    if not known.all():
        raise NctoolError(f"scores: {int((~known).sum())} pair id(s) are not in the dataset (e.g. "
                          f"'{scores.loc[~known, 'pair_id'].iloc[0]}'); give the dataset the scores were made from")
    scored = data["pair_id"].isin(scores["pair_id"]).to_numpy()
    scored_splits = pd.unique(data["split"].to_numpy()[scored])
    missing = data["split"].isin(scored_splits).to_numpy() & ~scored
    if missing.any():
        example = data["pair_id"].to_numpy()[missing][0]
        raise NctoolError(f"scores: {int(missing.sum())} row(s) of the scored split(s) "
                          f"{', '.join(sorted(scored_splits))} have no score (e.g. '{example}'); "
                          f"score the whole split with `nctool score`")
    replaced = [column for column in scores if column != "pair_id" and column in data]
    joined = data.drop(columns=replaced).merge(scores, on="pair_id", how="left")
    dropped = joined["label"].isin(drop)
    if min_reliability is not None:
        dropped |= joined["reliability"] < min_reliability
    dropped = dropped.to_numpy() & scored
    return FilterResult(joined[~dropped].reset_index(drop=True), joined[dropped].reset_index(drop=True),
                        _summary(joined, dropped, scored_splits))


def _one_detector(scores: pd.DataFrame, detector: str | None) -> pd.DataFrame:
    """The rows of one detector, without the evidence columns only other detectors fill."""
    present = list(scores["detector"].unique())
    if detector is None and len(present) > 1:
        raise NctoolError(f"scores: hold several detectors ({', '.join(present)}); pick one with --detector")
    if detector is not None and detector not in present:
        raise NctoolError(f"detector '{detector}': not in the scores file, which holds {', '.join(present)}")
    chosen = scores if detector is None else scores[scores["detector"] == detector]
    return chosen.dropna(axis=1, how="all").reset_index(drop=True)


def _summary(joined: pd.DataFrame, dropped: np.ndarray, scored_splits) -> list[dict]:
    """Rows per split and label (each label and "all" for scored splits, "unscored" for the others)."""
    truth = joined["noisy"].to_numpy(dtype=bool) if "noisy" in joined else None
    rows = []
    for split in [s for s in SPLITS if s in set(joined["split"])]:
        in_split = joined["split"].to_numpy() == split
        groups = ([(label, joined["label"].to_numpy() == label) for label in LABELS] + [("all", True)]
                  if split in scored_splits else [("unscored", True)])
        for label, in_group in groups:
            rows.append(_counts(split, label, in_split & in_group, dropped, truth))
    return rows


def _counts(split: str, label: str, rows: np.ndarray, dropped: np.ndarray, truth: np.ndarray | None) -> dict:
    out = {"split": split, "label": label, "kept": int((rows & ~dropped).sum()), "dropped": int((rows & dropped).sum())}
    if truth is not None:
        for name, mask in (("kept", rows & ~dropped), ("dropped", rows & dropped)):
            out[f"noisy share {name}"] = float(truth[mask].mean()) if mask.any() else None
    return out
