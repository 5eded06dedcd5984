"""What a curator's decisions say about the whole queue: the audited noise share and two reviewers' agreement.

**Audit.** The "audit" order is a uniform random permutation of the queue's pairs, the same for every
reviewer and session (pairs sorted by a hash of their pair_id). Its first pairs are a uniform random
sample, whichever order the curator decided them in; `audit_share` takes the longest prefix of the
permutation that is at least `AUDIT_COVERAGE` decided, and estimates the share of noise (drop or fix)
from the decisions in it, with a Wilson interval (finite-population corrected). The pairs of the
prefix left undecided (skipped) are left out: the estimate assumes the curator skipped without
regard to noise, and says how many were skipped. Below `MIN_AUDIT` decided pairs it states no share.

**Agreement.** Two reviewers who decided the same pairs (a blind second review of the audit sample,
`nctool review --blind`) agree by Cohen's kappa on noise (drop or fix) against keep.
"""

from __future__ import annotations

import hashlib

import numpy as np

from nctool.metrics import cohen_kappa, wilson_interval

AUDIT_LEVEL = 0.9
MIN_AUDIT = 30
"""Below this many decided pairs in the audit sample, no share is stated."""

AUDIT_COVERAGE = 0.95
"""The audit sample is the longest prefix of the audit order at least this share decided."""

NOISE_ACTIONS = ("drop", "fix")
"""The actions that say a pair's caption does not describe its image."""


def audit_order(pair_ids) -> np.ndarray:
    """The audit permutation: positions of `pair_ids` sorted by a hash of each id (uniform, reproducible)."""
    keys = [hashlib.blake2b(str(pair_id).encode(), digest_size=8).digest() for pair_id in pair_ids]
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def audit_share(actions, *, level: float = AUDIT_LEVEL) -> dict:
    """The noise share audited from the decisions on a queue in audit order.

    `actions` holds each pair's current action (None: undecided) in audit order. Returns `sample` (the
    prefix's length), `decided`, `skipped`, `noisy`, `estimate`, `low`, `high` (None below MIN_AUDIT
    decided), `level`, `population` and `needed` (decisions still needed before a share is stated).
    """
    actions = np.asarray(actions, dtype=object)
    decided = actions != None  # noqa: E711 (elementwise on an object array)
    noisy = np.zeros(len(actions), dtype=bool)
    for action in NOISE_ACTIONS:
        noisy |= actions == action
    covered = np.cumsum(decided) >= AUDIT_COVERAGE * np.arange(1, len(decided) + 1)
    ends = np.flatnonzero(covered & decided)
    sample = int(ends[-1]) + 1 if len(ends) else 0
    n, k = int(decided[:sample].sum()), int(noisy[:sample].sum())
    report = {"sample": sample, "decided": n, "skipped": sample - n, "noisy": k, "level": level,
              "population": len(decided), "needed": max(MIN_AUDIT - n, 0), "estimate": None, "low": None,
              "high": None}
    if n >= MIN_AUDIT:
        low, high = wilson_interval(k, n, level=level, population=len(decided))
        report.update(estimate=k / n, low=low, high=high)
    return report


def agreement(first, second) -> dict:
    """How two reviewers' actions on the same pairs agree (arrays of actions, None: undecided).

    Returns `pairs` (decided by both), `agree` (the share judged alike: noise or not), `kappa` (None
    when undefined or no pair is shared) and `disagree` (how many pairs they judged differently).
    """
    first, second = np.asarray(first, dtype=object), np.asarray(second, dtype=object)
    both = np.array([a is not None and b is not None for a, b in zip(first, second)], dtype=bool)
    a = np.isin(first[both], NOISE_ACTIONS)
    b = np.isin(second[both], NOISE_ACTIONS)
    if not both.any():
        return {"pairs": 0, "agree": None, "kappa": None, "disagree": 0}
    return {"pairs": int(both.sum()), "agree": float(np.mean(a == b)), "kappa": cohen_kappa(a, b),
            "disagree": int((a != b).sum())}
