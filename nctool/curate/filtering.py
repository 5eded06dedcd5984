"""Scores files: their columns, reading them, measuring them, and filtering a dataset by them.

`nctool score` writes a scores file (docs/schema.md, "Scores"); `nctool filter` applies one.
`filter_pairs(data, scores)` joins one detector's scores to the dataset on `pair_id` and splits the
rows into kept and dropped. A row is dropped when it is scored and its label is one of `drop` or its
reliability is below `min_reliability`. Only the splits the scores cover are filtered: rows of the
other splits (say val and test, when only train was scored) are kept untouched, with empty score
columns. Score columns replace same-named columns of the dataset (e.g. from an earlier filter run).
Each score carries the `row_hash` (nctool.schema.row_hashes) of the image and caption it judged, so
scores made from another version of the data (same pair ids, other captions) are refused.
People's review decisions (nctool.data.decisions) override the detector: `keep` keeps a pair, `drop`
drops it, `fix` keeps it with the corrected caption; undecided pairs follow the detector, and
decisions apply in every split, scored or not.
`filter_file` reads, filters and writes: what `nctool filter` runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nctool.data.decisions import ACTIONS, apply_decisions, match_decisions, read_decisions
from nctool.errors import NctoolError
from nctool.schema import (
    LABELS,
    OPTIONAL,
    REQUIRED,
    SPLITS,
    check_frame,
    check_output,
    image_root,
    iter_batches,
    noise_statements,
    read_table,
    row_hashes,
    write_table,
)

SCORE_COLUMNS = {"pair_id": REQUIRED["pair_id"],
                 **{name: OPTIONAL[name] for name in ("row_hash", "reliability", "label", "detector")}}
"""Columns every scores file has (evidence columns follow them); docs/schema.md, "Scores"."""

@dataclass
class FilterResult:
    kept: pd.DataFrame      # dataset rows kept, in file order, with the score columns
    dropped: pd.DataFrame   # dataset rows dropped, same columns
    summary: list[dict]     # per split and label: kept, dropped (and truly noisy shares with ground truth)
    decisions: dict[str, int] | None = None  # people's decisions applied, per action; None: none given
    notes: list[str] = field(default_factory=list)  # what a person should know: decisions not applied (made on
    # another version of the pair), a detector that labelled no pair noisy and why (filter_file)


def read_scores(path: str | os.PathLike) -> pd.DataFrame:
    """A scores file (long format: several detectors may repeat a pair_id), schema-checked."""
    chunks = list(iter_batches(path, required={}))
    if not chunks:
        raise NctoolError(f"{path}: holds no scores; write one with `nctool score`")
    scores = pd.concat(chunks, ignore_index=True)
    missing = [name for name in SCORE_COLUMNS if name not in scores]
    if missing:
        raise NctoolError(f"{path}: not a scores file of this nctool (no column '{missing[0]}'); "
                          f"score the dataset again with `nctool score`")
    return scores


def check_filter_options(drop: Sequence[str], min_reliability: float | None) -> None:
    """Refuse a `drop` label outside schema.LABELS or a `min_reliability` outside [0, 1]."""
    for label in drop:
        if label not in LABELS:
            raise NctoolError(f"drop '{label}': not a label; choose from {', '.join(LABELS)}")
    if min_reliability is not None and not 0 <= min_reliability <= 1:
        raise NctoolError(f"min reliability {min_reliability:g}: outside [0, 1]; reliabilities are in [0, 1]")


def filter_pairs(data: pd.DataFrame, scores: pd.DataFrame, *, drop: Sequence[str] = ("noisy",),
                 min_reliability: float | None = None, detector: str | None = None,
                 decisions: pd.DataFrame | None = None) -> FilterResult:
    """Kept and dropped rows of `data` by the scores of one detector and people's decisions (module docstring).

    Parameters
    ----------
    data
        The dataset, in nctool's schema.
    scores
        A scores table (`read_scores`), possibly holding several detectors.
    drop
        Labels whose pairs are dropped.
    min_reliability
        Also drop scored pairs whose reliability is below this; None: no bar.
    detector
        Whose scores to apply; may be None only when `scores` holds one detector.
    decisions
        Current review decisions (`nctool.data.decisions.read_decisions`), which override the detector;
        the rows get the `decision` and `caption_original` columns (`nctool.data.decisions.apply_decisions`).
        Decisions made on another version of a pair are not applied and reported in `notes`
        (`nctool.data.decisions.match_decisions`). None: the detector alone decides.

    Raises NctoolError for a bad `drop` label, `min_reliability` outside [0, 1], an ambiguous or
    unknown detector, duplicate pair ids, scores for pairs that are not in `data`, scores of another
    version of a pair (row hash mismatch), rows of a scored split without a score, and invalid
    decisions or decisions on pairs that are not in `data`.
    """
    check_filter_options(drop, min_reliability)
    scores = _one_detector(scores, detector)
    check_frame(scores, "scores", SCORE_COLUMNS)
    known = scores["pair_id"].isin(data["pair_id"])
    if not known.all():
        raise NctoolError(f"scores: {int((~known).sum())} pair id(s) are not in the dataset (e.g. "
                          f"'{scores.loc[~known, 'pair_id'].iloc[0]}'); give the dataset the scores were made from")
    scored = data["pair_id"].isin(scores["pair_id"]).to_numpy()
    _check_row_hashes(data[scored], scores)
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
    decided = applied = None
    notes = []
    if decisions is not None:
        decisions, stale = match_decisions(joined, decisions)
        notes += [stale] if stale else []
        joined = apply_decisions(joined, decisions)
        action = joined["decision"].to_numpy()
        decided = joined["decision"].notna().to_numpy()
        dropped = np.where(decided, action == "drop", dropped)
        applied = {name: int((action == name).sum()) for name in ACTIONS}
    return FilterResult(joined[~dropped].reset_index(drop=True), joined[dropped].reset_index(drop=True),
                        _summary(joined, dropped, scored_splits, decided), applied, notes)


def filter_file(data_path: str | os.PathLike, scores_path: str | os.PathLike, *, out: str | os.PathLike,
                dropped: str | os.PathLike | None = None, drop: Sequence[str] = ("noisy",),
                min_reliability: float | None = None, detector: str | None = None,
                decisions: str | os.PathLike | None = None) -> dict:
    """Read a dataset, a scores file (and decisions), filter (`filter_pairs`) and write the kept (and dropped) pairs.

    Parameters
    ----------
    data_path
        Dataset Parquet the scores were made from.
    scores_path
        Scores Parquet from `nctool score`.
    out
        Where the kept pairs go: every dataset column plus the score columns.
    dropped
        Where the dropped pairs go, for review; None: not written.
    drop, min_reliability, detector
        As in `filter_pairs`.
    decisions
        Review decisions that override the detector: a decision store (.sqlite) or its Parquet
        export (`nctool.data.decisions.read_decisions`); None: the detector alone decides.

    Outputs are checked before anything is read (neither may be a folder, an input or each other)
    and written atomically, with the dataset's image root so relative image paths still resolve.
    Returns `out`, `dropped_out`, `kept` and `dropped` (row counts), `summary` (FilterResult.summary),
    `decisions` and `notes` (FilterResult.decisions, .notes, and `unlabelled_note` when noisy pairs were to go).
    """
    check_output(out, data_path, scores_path, decisions)
    if dropped is not None:
        check_output(dropped, data_path, scores_path, decisions)
        if Path(dropped).resolve() == Path(out).resolve():
            raise NctoolError(f"{dropped}: given for both the kept and the dropped pairs; give two files")
    check_filter_options(drop, min_reliability)
    scores = read_scores(scores_path)
    result = filter_pairs(read_table(data_path), scores, drop=drop, min_reliability=min_reliability, detector=detector,
                          decisions=None if decisions is None else read_decisions(decisions))
    name = detector or scores["detector"].iat[0]  # filter_pairs refused a file of several without `detector`
    note = unlabelled_note(noise_statements(scores_path).get(name), name) if "noisy" in drop else None
    result.notes += [note] if note else []
    root = image_root(data_path)  # the outputs may live elsewhere: keep relative image paths resolvable
    write_table(result.kept, out, image_root=root)
    if dropped is not None:
        write_table(result.dropped, dropped, image_root=root)
    return {"out": str(out), "dropped_out": None if dropped is None else str(dropped), "kept": len(result.kept),
            "dropped": len(result.dropped), "summary": result.summary, "decisions": result.decisions,
            "notes": result.notes}


def unlabelled_note(stated: dict | None, detector: str) -> str | None:
    """Why a detector labelled no pair noisy, from what it stated (nctool.schema.noise_statements), when its
    statement says so: no share, a share too wide to pin, no set at the asked precision. None otherwise."""
    if stated is None or stated.get("method") != "decoys" or stated.get("noisy"):
        return None
    if stated["estimate"] is None:
        why = "it had too few pairs to state a noise share"
    elif not stated.get("pinned", True):  # files scored before `pinned` labelled only pinned shares
        why = f"its noise share's interval, {100 * stated['low']:.1f}-{100 * stated['high']:.1f} %, is too wide to pin"
    else:
        why = "no set of its pairs reached the precision `score --noisy-from` asked"
    remedies = ["another detector (e.g. rrsitr-attributes)", "--min-reliability"]
    if stated.get("in_sample"):  # its model learned these pairs: out-of-fold scores tell them from decoys better
        remedies.insert(0, "out-of-fold scores (`nctool train --folds 3`)")
    return (f"{detector} labelled no pair noisy ({why}), so --drop noisy dropped nothing (docs/labels.md); "
            f"try {', '.join(remedies[:-1])} or {remedies[-1]}")


def _check_row_hashes(scored_rows: pd.DataFrame, scores: pd.DataFrame) -> None:
    """Refuse scores whose row_hash differs from the dataset's row: they judged another image or caption."""
    hashes = pd.Series(row_hashes(scored_rows), index=scored_rows["pair_id"].to_numpy())
    differ = (hashes.reindex(scores["pair_id"].to_numpy()).to_numpy() != scores["row_hash"].to_numpy())
    if differ.any():
        example = scores["pair_id"].to_numpy()[differ][0]
        raise NctoolError(f"scores: pair '{example}' was scored with another image or caption than the dataset "
                          f"holds ({int(differ.sum())} of {len(scores)} scored pairs differ), so the scores come from "
                          f"another version of the data; filter the file they were made from, or score this one "
                          f"with `nctool score`")


def _one_detector(scores: pd.DataFrame, detector: str | None) -> pd.DataFrame:
    """The rows of one detector, without the evidence columns only other detectors fill."""
    present = list(scores["detector"].unique())
    if detector is None and len(present) > 1:
        raise NctoolError(f"scores: hold several detectors ({', '.join(present)}); pick one with --detector")
    if detector is not None and detector not in present:
        raise NctoolError(f"detector '{detector}': not in the scores file, which holds {', '.join(present)}")
    chosen = scores if detector is None else scores[scores["detector"] == detector]
    return chosen.dropna(axis=1, how="all").reset_index(drop=True)


def _summary(joined: pd.DataFrame, dropped: np.ndarray, scored_splits, decided: np.ndarray | None) -> list[dict]:
    """Rows per split and label (each label and "all" for scored splits, "unscored" for the others).

    With `decided` (the rows that carry a person's decision), each row also counts its `decisions`.
    """
    truth = joined["noisy"].to_numpy(dtype=bool) if "noisy" in joined else None
    rows = []
    for split in [s for s in SPLITS if s in set(joined["split"])]:
        in_split = joined["split"].to_numpy() == split
        groups = ([(label, joined["label"].to_numpy() == label) for label in LABELS] + [("all", True)]
                  if split in scored_splits else [("unscored", True)])
        for label, in_group in groups:
            rows.append(_counts(split, label, in_split & in_group, dropped, truth, decided))
    return rows


def _counts(split: str, label: str, rows: np.ndarray, dropped: np.ndarray, truth: np.ndarray | None,
            decided: np.ndarray | None) -> dict:
    out = {"split": split, "label": label, "kept": int((rows & ~dropped).sum()), "dropped": int((rows & dropped).sum())}
    if decided is not None:
        out["decisions"] = int((rows & decided).sum())
    if truth is not None:
        for name, mask in (("kept", rows & ~dropped), ("dropped", rows & dropped)):
            out[f"noisy share {name}"] = float(truth[mask].mean()) if mask.any() else None
    return out
