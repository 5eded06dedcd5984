"""The review queue: one detector's scored pairs, lowest reliability first, filtered and paged.

`ReviewQueue.load` builds the index once: the dataset's light columns (never the images) joined to
one detector's scores through `nctool.curate.filtering.filter_pairs`, so scores of another version of the
data are refused exactly as `nctool filter` refuses them. Pages, cards and the header's summary are
plain dicts ready to be sent as JSON; the decisions the queue knows are the ones it is told about
(`load_decisions`, `set_decision`), so the caller keeps it in step with the DecisionStore. A decision
made on another version of a pair (nctool.data.decisions.match_decisions) is not shown: the pair is undecided.
"""

from __future__ import annotations

import math
import os
from datetime import datetime

import numpy as np
import pandas as pd

from nctool.curate.filtering import filter_pairs, read_scores
from nctool.data.decisions import match_decisions
from nctool.errors import NctoolError
from nctool.schema import LABELS, column_names, noise_statements, read_table, row_hashes

LIGHT_COLUMNS = ("pair_id", "image_id", "caption", "split", "category", "noisy")
"""Dataset columns the queue reads: everything but the image."""

EVIDENCE_COLUMNS = ("loss", "loss_std", "similarity", "caption_agreement", "image_agreement",
                    "sibling_agreement")

STATES = {"undecided": None, "kept": "keep", "dropped": "drop", "fixed": "fix"}
"""Decision-state filter -> the action a pair in that state carries (None: no decision)."""

HISTOGRAM_BINS = 20
MAX_PAGE = 200


class ReviewQueue:
    """The scored pairs of one detector in review order, with the decisions made so far.

    Attributes
    ----------
    pairs
        Every dataset row (file order, light columns) with the detector's score columns; rows of
        unscored splits have null scores.
    order
        Row numbers of `pairs` of the scored pairs, lowest reliability first (ties in file order).
    detector
        Whose scores these are.
    """

    def __init__(self, pairs: pd.DataFrame, detector: str, statement: dict | None = None):
        self.pairs = pairs
        self.detector = detector
        self.statement = statement  # the detector's noise share and sets as `nctool score` stated them
        scored = np.flatnonzero(pairs["reliability"].notna().to_numpy())
        self.order = scored[np.argsort(pairs["reliability"].to_numpy()[scored], kind="stable")]
        self.row_of = dict(zip(pairs["pair_id"], range(len(pairs))))
        self.rows_of_image = pairs.groupby("image_id", sort=False).indices
        self.decisions: dict[str, dict] = {}
        self._actions = np.full(len(pairs), None, dtype=object)
        self._captions_lower = pairs["caption"].str.lower().to_numpy()[self.order]
        self._evidence = [name for name in EVIDENCE_COLUMNS if name in pairs]
        self._suggestions = "suggested_captions" in pairs or "suggested_image_ids" in pairs

    @classmethod
    def load(cls, data_path: str | os.PathLike, scores_path: str | os.PathLike, *,
             detector: str | None = None) -> "ReviewQueue":
        """Read the dataset's light columns and one detector's scores (refused as `nctool filter` refuses them)."""
        present = column_names(data_path)
        data = read_table(data_path, columns=[name for name in LIGHT_COLUMNS if name in present])
        scores = read_scores(scores_path)
        if detector is None and scores["detector"].nunique() == 1:
            detector = scores["detector"].iloc[0]
        pairs = filter_pairs(data, scores, drop=(), detector=detector).kept
        return cls(pairs, detector, noise_statements(scores_path).get(detector))

    def row_hash(self, pair_id: str) -> str:
        """The row hash (nctool.schema.row_hashes) of a pair as the page shows it: what a decision on it judged."""
        return row_hashes(self.pairs.iloc[[self.row_of[pair_id]]])[0]

    def load_decisions(self, decisions: pd.DataFrame) -> str | None:
        """Take a store's current decisions (`DecisionStore.current`); those on pairs of other datasets are
        left out, those made on another version of a pair too, and counted in the returned line (None: none)."""
        matching, stale = match_decisions(self.pairs, decisions, others="skip")
        for decision in matching.to_dict("records"):
            self._set(decision["pair_id"], decision)
        return stale

    def set_decision(self, pair_id: str, decision: dict | None) -> None:
        """Record the current decision on a pair (None: it has none, or it was made on another version of it)."""
        if decision is not None and not pd.isna(decision.get("row_hash")) and match_decisions(
                self.pairs.iloc[[self.row_of[pair_id]]], pd.DataFrame([decision]), others="skip")[1] is not None:
            decision = None
        self._set(pair_id, decision)

    def _set(self, pair_id: str, decision: dict | None) -> None:
        row = self.row_of[pair_id]
        if decision is None:
            self.decisions.pop(pair_id, None)
            self._actions[row] = None
        else:
            self.decisions[pair_id] = _jsonable(decision)
            self._actions[row] = decision["action"]

    def select(self, *, label: str | None = None, category: str | None = None, state: str | None = None,
               text: str | None = None) -> np.ndarray:
        """Row numbers of the queue's pairs that pass every given filter, in review order."""
        if label is not None and label not in LABELS:
            raise NctoolError(f"label '{label}': unknown; choose from {', '.join(LABELS)}")
        if state is not None and state not in STATES:
            raise NctoolError(f"state '{state}': unknown; choose from {', '.join(STATES)}")
        keep = np.ones(len(self.order), dtype=bool)
        if label is not None:
            keep &= self.pairs["label"].to_numpy()[self.order] == label
        if category is not None:
            categories = self.pairs["category"].to_numpy()[self.order] if "category" in self.pairs else None
            keep &= categories == category
        if state is not None:
            actions = self._actions[self.order]
            keep &= pd.isna(actions) if STATES[state] is None else actions == STATES[state]
        if text:
            needle = text.lower()
            keep &= np.fromiter((needle in caption for caption in self._captions_lower), bool, len(self.order))
        return self.order[keep]

    def page(self, *, offset: int = 0, limit: int = 50, resume: bool = False, **filters) -> dict:
        """One page of cards of the filtered queue.

        With `resume`, the page is the one holding the first undecided pair (the place the curator
        stopped) and `focus` is that pair's place in the filtered queue; otherwise `focus` is `offset`.
        """
        if offset < 0:
            raise NctoolError(f"offset {offset}: negative; give 0 or more")
        if not 1 <= limit <= MAX_PAGE:
            raise NctoolError(f"limit {limit}: outside 1..{MAX_PAGE}; ask for a smaller page")
        rows = self.select(**filters)
        focus = offset
        if resume:
            undecided = np.flatnonzero(pd.isna(self._actions[rows]))
            focus = int(undecided[0]) if len(undecided) else max(len(rows) - 1, 0)
            offset = focus - focus % limit
        return {"total": len(rows), "offset": offset, "limit": limit, "focus": focus,
                "cards": [self.card(row) for row in rows[offset:offset + limit]]}

    def card(self, row: int) -> dict:
        """Everything the page shows about one pair."""
        pair = self.pairs.iloc[row]
        siblings = [r for r in self.rows_of_image[pair["image_id"]] if r != row]
        card = {"pair_id": pair["pair_id"], "image_id": pair["image_id"], "caption": pair["caption"],
                "split": pair["split"], "category": _value(pair.get("category")),
                "reliability": float(pair["reliability"]), "label": pair["label"],
                "evidence": {name: _value(pair[name]) for name in self._evidence if _value(pair[name]) is not None},
                "noisy": _value(pair.get("noisy")),
                "siblings": [{"pair_id": self.pairs["pair_id"].iat[r], "caption": self.pairs["caption"].iat[r]}
                             for r in siblings],
                "decision": self.decisions.get(pair["pair_id"])}
        if self._suggestions:
            card["suggested_captions"] = [
                {"pair_id": pid, "caption": caption, "score": float(score)} for pid, caption, score in
                zip(*(_list(pair.get(name)) for name in ("suggested_pair_ids", "suggested_captions",
                                                          "suggested_caption_scores")))]
            card["suggested_images"] = [
                {"image_id": image_id, "pair_id": self.pairs["pair_id"].iat[self.rows_of_image[image_id][0]],
                 "score": float(score)}
                for image_id, score in zip(_list(pair.get("suggested_image_ids")),
                                           _list(pair.get("suggested_image_scores")))
                if image_id in self.rows_of_image]
        return card

    def summary(self) -> dict:
        """The header: progress, the detector's stated noise share (and, with ground truth, the true one), the
        histogram."""
        labels = self.pairs["label"].to_numpy()[self.order]
        reliability = self.pairs["reliability"].to_numpy()[self.order]
        actions = pd.Series(self._actions[self.order]).value_counts()
        edges = np.linspace(0, 1, HISTOGRAM_BINS + 1)
        reviewed = int(actions.sum())
        noisy = self.pairs["noisy"].to_numpy()[self.order] if "noisy" in self.pairs else None
        return {
            "detector": self.detector, "pairs": len(self.order), "reviewed": reviewed,
            "left": len(self.order) - reviewed, "actions": {action: int(actions.get(action, 0)) for action in
                                                           ("keep", "drop", "fix")},
            "noise_share": self.statement,  # the detector's, as `nctool score` stated it; None: not stated
            "noise_text": stated_noise(self.statement),
            "true_noise_share": float(noisy.astype(bool).mean()) if noisy is not None and len(noisy) else None,
            "histogram": {"edges": edges.tolist(), "counts": {
                label: np.histogram(reliability[labels == label], bins=edges)[0].tolist() for label in LABELS}},
            "thresholds": {"noisy_up_to": _extreme(reliability[labels == "noisy"], max),
                           "clean_from": _extreme(reliability[labels == "clean"], min)},
            "categories": sorted(self.pairs["category"].dropna().unique().tolist()) if "category" in self.pairs else [],
            "has_truth": noisy is not None, "has_suggestions": self._suggestions,
        }


def stated_noise(stated: dict | None) -> str:
    """A detector's statement (nctool.schema.noise_statements) in one line for the page and the gallery."""
    if stated is None:
        return ""
    if stated["estimate"] is None:
        return "noise share: not enough evidence to state it"
    text = f"estimated noise {100 * stated['estimate']:.1f} % ({100 * stated['low']:.1f}-{100 * stated['high']:.1f})"
    if stated["method"] != "decoys":
        return text + " (mixture)"
    if stated.get("scene_estimate") is not None:
        text += f"; like same-scene captions {100 * stated['scene_estimate']:.1f} %"
    if stated["clean"]:
        text += f", clean {stated['clean']} pairs with est. {100 * stated['clean_contamination']:.1f} % noisy"
    return text


def _extreme(values: np.ndarray, pick) -> float | None:
    return float(pick(values)) if len(values) else None


def _list(value) -> list:
    """A list cell of the scores file: [] for a null cell (an unflagged pair)."""
    return [] if value is None or (isinstance(value, float) and math.isnan(value)) else list(value)


def _value(value):
    """A cell as a JSON value: None for a null, a Python scalar otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (datetime, pd.Timestamp)):
        return value.isoformat()
    return value


def _jsonable(decision: dict) -> dict:
    return {key: _value(value) for key, value in decision.items()}
