"""The review queue: one detector's scored pairs in a chosen order, filtered and paged.

`ReviewQueue.load` builds the index once: the dataset's light columns (never the images) joined to
one detector's scores through `nctool.curate.filtering.filter_pairs`, so scores of another version of the
data are refused exactly as `nctool filter` refuses them; the other detectors' reliabilities in the
scores file join it too, as inputs of the learned order. Pages, cards and the header's summary are
plain dicts ready to be sent as JSON. The queue reads decisions from a DecisionStore (`sync`, after
every write), in one of two views: everyone's current decision (last write wins), or, in a blind
review, one reviewer's own. A decision made on another version of a pair
(nctool.data.decisions.match_decisions) is not shown: the pair is undecided.

ORDERS are the orders the page offers: `noisiest` (lowest reliability first), `learned` (by the
curator's model, nctool.curate.review.learning, once it is fitted), `uncertain` (the chance of noise
nearest one half first: where a person's word changes the most), `category` (by scene class, noisiest
first within one), `audit` (uniform random, nctool.curate.review.audit).
"""

from __future__ import annotations

import math
import os
import threading
from datetime import datetime

import numpy as np
import pandas as pd

from nctool.curate.filtering import filter_pairs, read_scores
from nctool.curate.review.audit import NOISE_ACTIONS, agreement, audit_order, audit_share
from nctool.curate.review.learning import LEARN_EVERY, MIN_PER_CLASS, fit_noise_model, noise_features
from nctool.data.decisions import DECISION_COLUMNS, DecisionStore, match_decisions
from nctool.errors import NctoolError
from nctool.schema import LABELS, column_names, noise_statements, read_table, row_hashes

LIGHT_COLUMNS = ("pair_id", "image_id", "caption", "split", "category", "noisy")
"""Dataset columns the queue reads: everything but the image."""

EVIDENCE_COLUMNS = ("loss", "loss_std", "similarity", "caption_agreement", "image_agreement",
                    "sibling_agreement")

STATES = {"undecided": None, "kept": "keep", "dropped": "drop", "fixed": "fix"}
"""Decision-state filter -> the action a pair in that state carries (None: no decision)."""

DISAGREED = "disagreed"
"""The state filter of the pairs two reviewers judged differently (noise against keep)."""

ORDERS = ("noisiest", "learned", "uncertain", "category", "audit")
"""The queue's orders (module docstring); the first is the default."""

HISTOGRAM_BINS = 20
MAX_PAGE = 200


class ReviewQueue:
    """The scored pairs of one detector, with the decisions made so far, in the chosen order.

    Attributes
    ----------
    pairs
        Every dataset row (file order, light columns) with the detector's score columns, and
        `reliability_<detector>` of the scores file's other detectors; rows of unscored splits have null scores.
    order
        Row numbers of `pairs` of the scored pairs, lowest reliability first (ties in file order).
    detector
        Whose scores these are.
    blind
        The reviewer whose own decisions the queue shows (a blind review); None: everyone's current decision.
    """

    def __init__(self, pairs: pd.DataFrame, detector: str, statement: dict | None = None, *,
                 blind: str | None = None):
        self.pairs = pairs
        self.detector = detector
        self.statement = statement  # the detector's noise share and sets as `nctool score` stated them
        self.blind = blind
        scored = np.flatnonzero(pairs["reliability"].notna().to_numpy())
        self.order = scored[np.argsort(pairs["reliability"].to_numpy()[scored], kind="stable")]
        self.row_of = dict(zip(pairs["pair_id"], range(len(pairs))))
        self.rows_of_image = pairs.groupby("image_id", sort=False).indices
        self.decisions: dict[str, dict] = {}
        self._actions = np.full(len(pairs), None, dtype=object)
        self._by_reviewer: dict[str, np.ndarray] = {}  # each reviewer's own current actions, for agreement
        self._captions_lower = pairs["caption"].str.lower().to_numpy()
        self._evidence = [name for name in EVIDENCE_COLUMNS if name in pairs]
        self._suggestions = "suggested_captions" in pairs or "suggested_image_ids" in pairs
        self._audit = self.order[audit_order(pairs["pair_id"].to_numpy()[self.order])]
        self._features = None  # the learner's inputs, built at its first fit
        self._learned = None  # its predicted chance of noise per row of `order`; None: not fitted yet
        self._learned_from = 0  # how many decisions it was fitted on
        self._orders: dict[str, np.ndarray] = {}  # each order's rows, until the learner or decisions change
        self._sync_lock = threading.Lock()
        # each column as an array: a card reads its cells from them (a pandas row costs ~0.3 ms, 20 ms a grid page)
        self._cells = {name: pairs[name].to_numpy() for name in pairs}
        self._static = self._static_summary()

    def _static_summary(self) -> dict:
        """The parts of the header that the decisions do not change: the histogram, the label thresholds, the
        scene classes, the truth, computed once."""
        labels = self._cells["label"][self.order]
        reliability = self._cells["reliability"][self.order]
        edges = np.linspace(0, 1, HISTOGRAM_BINS + 1)
        noisy = self._cells["noisy"][self.order] if "noisy" in self._cells else None
        return {
            "detector": self.detector, "pairs": len(self.order),
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

    @classmethod
    def load(cls, data_path: str | os.PathLike, scores_path: str | os.PathLike, *,
             detector: str | None = None, blind: str | None = None) -> "ReviewQueue":
        """Read the dataset's light columns and the scores (refused as `nctool filter` refuses them)."""
        present = column_names(data_path)
        data = read_table(data_path, columns=[name for name in LIGHT_COLUMNS if name in present])
        scores = read_scores(scores_path)
        if detector is None and scores["detector"].nunique() == 1:
            detector = scores["detector"].iloc[0]
        pairs = filter_pairs(data, scores, drop=(), detector=detector).kept
        others = scores[scores["detector"] != detector].pivot_table(
            index="pair_id", columns="detector", values="reliability", aggfunc="first")
        for name in others:
            pairs[f"reliability_{name}"] = pairs["pair_id"].map(others[name]).to_numpy(dtype=float)
        return cls(pairs, detector, noise_statements(scores_path).get(detector), blind=blind)

    def row_hash(self, pair_id: str) -> str:
        """The row hash (nctool.schema.row_hashes) of a pair as the page shows it: what a decision on it judged."""
        return row_hashes(self.pairs.iloc[[self.row_of[pair_id]]])[0]

    def sync(self, store: DecisionStore, pair_ids=None) -> str | None:
        """Read the current decisions from `store`: of every pair (None), or of `pair_ids` after a write.

        Decisions on pairs of other datasets are left out, those made on another version of a pair too,
        and counted in the returned line (None: none). Refits the learner when LEARN_EVERY decisions came
        since its last fit, or one was undone.
        """
        if pair_ids is None:
            return self.load_decisions(store.current(reviewer=self.blind), store.current(by_reviewer=True))
        pair_ids = [pair_id for pair_id in pair_ids if pair_id in self.row_of]
        everyone = [decision for reviewer in {*self._by_reviewer, store.reviewer}
                    for decision in store.get(pair_ids, reviewer=reviewer).values()]
        return self._take(_frame(store.get(pair_ids, reviewer=self.blind).values()), _frame(everyone), pair_ids)

    def load_decisions(self, decisions: pd.DataFrame, by_reviewer: pd.DataFrame | None = None) -> str | None:
        """Replace the decisions the queue knows by a store's current ones (`DecisionStore.current`, in the queue's
        view) and each reviewer's (`current(by_reviewer=True)`; None: only `decisions`); returns what `sync` does."""
        return self._take(decisions, decisions if by_reviewer is None else by_reviewer, None)

    def _take(self, view: pd.DataFrame, everyone: pd.DataFrame, pair_ids: list[str] | None) -> str | None:
        """Put these decisions in place of the known ones of `pair_ids` (None: of every pair).

        The new state is built aside and swapped in at once: the server reads the queue on its event loop
        while a sync runs in a worker thread, and must see the old decisions or the new, never a half;
        the lock keeps two syncs (two writes at once) from swapping in each other's half."""
        with self._sync_lock:
            if pair_ids is None:
                actions, decisions, by_reviewer = np.full(len(self.pairs), None, dtype=object), {}, {}
            else:
                rows = self._rows(pair_ids)
                actions, decisions = self._actions.copy(), dict(self.decisions)
                by_reviewer = {reviewer: theirs.copy() for reviewer, theirs in self._by_reviewer.items()}
                for known in (actions, *by_reviewer.values()):
                    known[rows] = None
                for pair_id in pair_ids:
                    decisions.pop(pair_id, None)
            matching, stale = self._match(view)
            actions[self._rows(matching["pair_id"])] = matching["action"].to_numpy(dtype=object)
            decisions.update({decision["pair_id"]: _jsonable(decision) for decision in matching.to_dict("records")})
            for reviewer, theirs in everyone.groupby("reviewer"):
                theirs = self._match(theirs)[0]
                known = by_reviewer.setdefault(reviewer, np.full(len(self.pairs), None, dtype=object))
                known[self._rows(theirs["pair_id"])] = theirs["action"].to_numpy(dtype=object)
            self._actions, self.decisions, self._by_reviewer = actions, decisions, by_reviewer
            self._learn()
        return stale

    def _match(self, decisions: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
        """match_decisions against the decided pairs' rows alone (a string isin over every pair costs seconds
        at 100k pairs); decisions on pairs of other datasets are left out."""
        rows = self._rows(decisions["pair_id"])
        return match_decisions(self.pairs.iloc[np.unique(rows[rows >= 0])], decisions[rows >= 0], others="skip")

    def _rows(self, pair_ids) -> np.ndarray:
        """The row of each pair id, -1 for an id not in the data (a dict lookup: Series.map copies the dict)."""
        return np.fromiter((self.row_of.get(pair_id, -1) for pair_id in pair_ids), np.int64)

    def _learn(self) -> None:
        """Refit the curator's model when LEARN_EVERY decisions came since its last fit (or fewer stand now)."""
        actions = self._actions[self.order]
        decided = np.flatnonzero(~pd.isna(actions))
        if abs(len(decided) - self._learned_from) < LEARN_EVERY and len(decided) >= self._learned_from:
            return
        if self._features is None:
            self._features = noise_features(self.pairs.iloc[self.order])
        self._learned = fit_noise_model(self._features, decided, np.isin(actions[decided], NOISE_ACTIONS))
        self._learned_from = len(decided) if self._learned is not None else 0
        for name in ("learned", "uncertain"):
            self._orders.pop(name, None)

    def noise_chance(self) -> np.ndarray:
        """The chance of noise per row of `order`: the learner's once fitted, else the detector's noisy
        probability, else one minus reliability."""
        if self._learned is not None:
            return self._learned
        if "noisy_probability" in self.pairs:
            chance = self._cells["noisy_probability"][self.order].astype(float)
            if not np.isnan(chance).any():
                return chance
        return 1 - self._cells["reliability"][self.order].astype(float)

    def rows_in(self, order: str) -> np.ndarray:
        """The scored rows in one of ORDERS."""
        if order not in ORDERS:
            raise NctoolError(f"order '{order}': unknown; choose from {', '.join(ORDERS)}")
        if order == "noisiest":
            return self.order
        if order == "audit":
            return self._audit
        if order not in self._orders:
            if order == "category" and "category" in self.pairs:
                categories = self.pairs["category"].astype(str).to_numpy()[self.order]
                place = np.argsort(categories, kind="stable")
            elif order == "category":  # no scene classes: the noisiest order
                place = np.arange(len(self.order))
            elif order == "learned":
                place = np.argsort(-self.noise_chance(), kind="stable")
            else:
                place = np.argsort(np.abs(self.noise_chance() - 0.5), kind="stable")
            self._orders[order] = self.order[place]
        return self._orders[order]

    def select(self, *, label: str | None = None, category: str | None = None, state: str | None = None,
               text: str | None = None, order: str = ORDERS[0]) -> np.ndarray:
        """Row numbers of the queue's pairs that pass every given filter, in `order` (one of ORDERS)."""
        if label is not None and label not in LABELS:
            raise NctoolError(f"label '{label}': unknown; choose from {', '.join(LABELS)}")
        if state is not None and state not in (*STATES, DISAGREED):
            raise NctoolError(f"state '{state}': unknown; choose from {', '.join((*STATES, DISAGREED))}")
        rows = self.rows_in(order)
        keep = np.ones(len(rows), dtype=bool)
        if label is not None:
            keep &= self._cells["label"][rows] == label
        if category is not None:
            categories = self._cells["category"][rows] if "category" in self._cells else None
            keep &= categories == category
        if state == DISAGREED:
            keep &= self._disagreed()[rows]
        elif state is not None:
            actions = self._actions[rows]
            keep &= pd.isna(actions) if STATES[state] is None else actions == STATES[state]
        if text:
            needle = text.lower()
            keep &= np.fromiter((needle in caption for caption in self._captions_lower[rows]), bool, len(rows))
        return rows[keep]

    def _reviewers(self) -> list[str]:
        """The two reviewers with the most decisions on this queue's pairs (fewer when fewer decided)."""
        counts = {reviewer: int((~pd.isna(actions)).sum()) for reviewer, actions in self._by_reviewer.items()}
        return sorted((reviewer for reviewer, count in counts.items() if count), key=lambda r: (-counts[r], r))[:2]

    def _disagreed(self) -> np.ndarray:
        """Per row: whether the two reviewers (`_reviewers`) judged it differently, noise against keep."""
        if self.blind is not None:
            raise NctoolError("state 'disagreed': a blind review does not show the other reviewer's decisions; "
                              "open the review without --blind to settle disagreements")
        reviewers = self._reviewers()
        if len(reviewers) < 2:
            return np.zeros(len(self.pairs), dtype=bool)
        first, second = (self._by_reviewer[reviewer] for reviewer in reviewers)
        both = ~pd.isna(first) & ~pd.isna(second)
        return both & (np.isin(first, NOISE_ACTIONS) != np.isin(second, NOISE_ACTIONS))

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

    def rule(self, *, min_noisy_probability: float, **filters) -> dict:
        """The undecided pairs of the filtered queue whose noisy probability is at least `min_noisy_probability`:
        what a bulk rule would decide, with their expected share of noise (the mean of that probability)
        and the rule in words. Uses the detector's noisy probability (the learner's, once fitted)."""
        if not 0 <= min_noisy_probability <= 1:
            raise NctoolError(f"noisy probability {min_noisy_probability:g}: outside [0, 1]; give a cut in [0, 1]")
        rows = self.select(**{**filters, "state": "undecided"})
        chance = np.empty(len(self.pairs))
        chance[self.order] = self.noise_chance()
        picked = rows[chance[rows] >= min_noisy_probability]
        shown = ", ".join(f"{name}={value}" for name, value in sorted(filters.items()) if value and name != "order")
        source = "the learned" if self._learned is not None else "the detector's"
        return {"pair_ids": self._cells["pair_id"][picked].tolist(), "pairs": len(picked),
                "expected_noise": float(chance[picked].mean()) if len(picked) else None,
                "rule": (f"undecided pairs{' with ' + shown if shown else ''} whose {source} noisy probability is at "
                         f"least {min_noisy_probability:g}")}

    def card(self, row: int) -> dict:
        """Everything the page shows about one pair."""
        pair = {name: cells[row] for name, cells in self._cells.items()}
        siblings = [r for r in self.rows_of_image[pair["image_id"]] if r != row]
        card = {"pair_id": pair["pair_id"], "image_id": pair["image_id"], "caption": pair["caption"],
                "split": pair["split"], "category": _value(pair.get("category")),
                "reliability": float(pair["reliability"]), "label": pair["label"],
                "noisy_probability": _value(pair.get("noisy_probability")),
                "evidence": {name: _value(pair[name]) for name in self._evidence if _value(pair[name]) is not None},
                "noisy": _value(pair.get("noisy")),
                "siblings": [{"pair_id": self._cells["pair_id"][r], "caption": self._cells["caption"][r]}
                             for r in siblings],
                "decision": self.decisions.get(pair["pair_id"])}
        if self._suggestions:
            card["suggested_captions"] = [
                {"pair_id": pid, "caption": caption, "score": float(score)} for pid, caption, score in
                zip(*(_list(pair.get(name)) for name in ("suggested_pair_ids", "suggested_captions",
                                                          "suggested_caption_scores")))]
            card["suggested_images"] = [
                {"image_id": image_id, "pair_id": self._cells["pair_id"][self.rows_of_image[image_id][0]],
                 "score": float(score)}
                for image_id, score in zip(_list(pair.get("suggested_image_ids")),
                                           _list(pair.get("suggested_image_scores")))
                if image_id in self.rows_of_image]
        return card

    def summary(self) -> dict:
        """The header: progress, the detector's stated noise share (and, with ground truth, the true one), the
        histogram."""
        actions = self._actions[self.order]
        counts = {action: int((actions == action).sum()) for action in ("keep", "drop", "fix")}
        reviewed = sum(counts.values())
        return {**self._static, "reviewed": reviewed, "left": len(self.order) - reviewed, "actions": counts,
                "blind": self.blind, **self.findings()}

    def findings(self) -> dict:
        """What the curator's decisions say about the queue: the learner (`learned`), the audited share (`audit`,
        nctool.curate.review.audit.audit_share), two reviewers' agreement (`agreement`), each also as a line
        (`*_text`) for the page and the CLI."""
        predicted = self._cells["noisy_probability"][self._audit] if "noisy_probability" in self._cells else None
        audit = audit_share(self._actions[self._audit], predicted=predicted,
                            labels=self._cells["label"][self._audit])
        learned, agreed = self.learned_summary(), self.agreement()
        return {"learned": learned, "audit": audit, "agreement": agreed, "learned_text": learned_text(learned),
                "audit_text": audit_text(audit), "audit_labels_text": audit_labels_text(audit, self.statement),
                "agreement_text": agreement_text(agreed)}

    def learned_summary(self) -> dict:
        """How many decisions the curator's model learned from, and its estimate of the noise share: the
        decided pairs as decided, the others at its predicted chance (None before its first fit)."""
        if self._learned is None:
            return {"decisions": 0, "estimate": None}
        actions = self._actions[self.order]
        decided = ~pd.isna(actions)
        noise = np.where(decided, np.isin(actions, NOISE_ACTIONS), self._learned)
        return {"decisions": self._learned_from, "estimate": float(noise.mean())}

    def agreement(self) -> dict | None:
        """The two reviewers with the most decisions and how they agree (nctool.curate.review.audit.agreement);
        None in a blind review or with fewer than two reviewers."""
        reviewers = self._reviewers()
        if self.blind is not None or len(reviewers) < 2:
            return None
        first, second = (self._by_reviewer[reviewer][self.order] for reviewer in reviewers)
        return {"reviewers": reviewers, **agreement(first, second)}


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
    if stated.get("noisy") and stated.get("noisy_low") is not None:  # files scored before the interval lack it
        text += (f", noisy {stated['noisy']} pairs with est. precision {100 * stated['noisy_precision']:.0f} % "
                 f"({100 * stated['noisy_low']:.0f}-{100 * stated['noisy_high']:.0f})")
    if stated.get("in_sample"):  # a share since the checkpoints keep their pairs; True in files scored before
        seen = "" if stated["in_sample"] is True else f" {100 * stated['in_sample']:.0f} % of"
        text += f" (in sample: its model trained on{seen} these pairs, so the share runs low)"
    return text


def audit_text(audit: dict) -> str:
    """The audited share (nctool.curate.review.audit.audit_share) in one line."""
    if audit["estimate"] is None:
        return (f"audit: decide {audit['needed']} more pairs in the audit order for a noise share "
                f"({audit['decided']} decided in its sample so far)")
    text = (f"audit: {100 * audit['estimate']:.1f} % noisy ({100 * audit['low']:.1f}-{100 * audit['high']:.1f}, "
            f"{100 * audit['level']:.0f} %) from {audit['decided']} decided in a uniform sample")
    if audit.get("assisted"):
        assisted = audit["assisted"]
        text += (f"; with the detector's scores {100 * assisted['estimate']:.1f} % "
                 f"({100 * assisted['low']:.1f}-{100 * assisted['high']:.1f})")
    return text + (f"; {audit['skipped']} skipped, left out" if audit["skipped"] else "")


def audit_labels_text(audit: dict, stated: dict | None) -> str:
    """The audit's check of the clean and noisy labels (nctool.curate.review.audit.audit_share's `labels`) beside
    the rates they were stated with, in one line ("" before the audit states a share)."""
    checks = audit.get("labels") or {}
    stated = stated or {}
    parts = []
    for label, rate in (("clean", "clean_contamination"), ("noisy", "noisy_precision")):
        if label in checks:
            check, digits = checks[label], 1 if label == "clean" else 0
            low, high = 100 * check["low"], 100 * check["high"]
            part = (f"{label} {check['noisy']} of {check['decided']} are noise "
                    f"({100 * check['estimate']:.{digits}f} %, {low:.{digits}f}-{high:.{digits}f}")
            if stated.get(rate) is not None:
                part += f"; stated {100 * stated[rate]:.{digits}f} %"
            parts.append(part + ")")
    return "audited labels: " + "; ".join(parts) if parts else ""


def learned_text(learned: dict) -> str:
    """What the curator's model learned from, in one line."""
    if learned["estimate"] is None:
        return (f"the learned order starts after {LEARN_EVERY} decisions with {MIN_PER_CLASS} kept and "
                f"{MIN_PER_CLASS} dropped or fixed")
    return (f"learned from {learned['decisions']} decisions: model estimate {100 * learned['estimate']:.1f} % noisy "
            f"(not a sample: quote the audit)")


def agreement_text(agreed: dict | None) -> str:
    """Two reviewers' agreement in one line ("" with fewer than two reviewers, or in a blind review)."""
    if agreed is None:
        return ""
    first, second = agreed["reviewers"]
    if not agreed["pairs"]:
        return f"{first} and {second} have decided no pair in common yet"
    kappa = "undefined (one answer throughout)" if agreed["kappa"] is None else f"{agreed['kappa']:.2f}"
    return (f"{first} vs {second}: Cohen's kappa {kappa}, agree on {100 * agreed['agree']:.0f} % of "
            f"{agreed['pairs']} pairs, {agreed['disagree']} disagree")


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


def _frame(decisions) -> pd.DataFrame:
    """Decisions (dicts of DECISION_COLUMNS) as a table, empty ones included."""
    return pd.DataFrame(list(decisions), columns=list(DECISION_COLUMNS))


def _jsonable(decision: dict) -> dict:
    return {key: _value(value) for key, value in decision.items()}
