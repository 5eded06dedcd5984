"""The queue that learns from the curator: a small model of the curator's keep/drop on the detectors' evidence.

After every `LEARN_EVERY` decisions the review queue refits `fit_noise_model`: a logistic
regression whose inputs are what the scores file knows about each pair (the reliability of every
detector in it, the chosen detector's noisy probability and evidence, the caption's length) and
whose labels are the curator's decisions (drop or fix: the caption does not describe the image;
keep: it does). Its predicted chance that a pair is noise re-ranks what is left ("learned" and
"uncertain" orders) and gives a model estimate of the noise share. The decisions it learns from
are not a random sample (the queue shows the likeliest noise first), so that estimate leans on the
model being right where the curator has not looked; the audit (nctool.curate.review.audit) is the
figure to quote.
"""

from __future__ import annotations

import importlib
import threading

import numpy as np
import pandas as pd

LEARN_EVERY = 10
"""Refit after this many new decisions (or any undo)."""

MIN_PER_CLASS = 5
"""Fit only once the curator has kept at least this many pairs and dropped or fixed at least this many."""

_EVIDENCE = ("noisy_probability", "loss", "loss_std", "similarity", "caption_agreement", "image_agreement",
             "sibling_agreement")


def warm_up() -> None:
    """Import scikit-learn in the background (1-2 s), so the curator's first fit does not wait for it."""
    threading.Thread(target=importlib.import_module, args=("sklearn.linear_model",), daemon=True).start()


def noise_features(pairs: pd.DataFrame) -> np.ndarray:
    """The model's inputs for every row of `pairs`: each column's percentile ranks (scores of different
    detectors live on different scales; ranks make them alike), standardised over the rows, a missing
    value at the column's mean (0). Columns: every `reliability*` column, the evidence present, caption words."""
    names = [name for name in pairs if name.startswith("reliability")] + [name for name in _EVIDENCE if name in pairs]
    columns = [pairs[name].to_numpy(dtype=float) for name in names]
    columns.append(pairs["caption"].str.split().str.len().to_numpy(dtype=float))
    matrix = np.column_stack(columns)
    matrix = pd.DataFrame(matrix).rank(pct=True).to_numpy()  # ranks kept the demo's learned order ahead (docs)
    mean, spread = np.nanmean(matrix, axis=0), np.nanstd(matrix, axis=0)
    matrix = (matrix - mean) / np.where(spread > 0, spread, 1.0)
    return np.nan_to_num(matrix, nan=0.0)


def fit_noise_model(features: np.ndarray, decided: np.ndarray, is_noise: np.ndarray) -> np.ndarray | None:
    """The predicted chance that each row is noise, from a logistic regression fitted on the decided rows.

    `features` is (rows, columns) (`noise_features`), `decided` the row numbers decided and `is_noise`
    their decisions (True: drop or fix). None when either class has fewer than MIN_PER_CLASS decisions.
    """
    from sklearn.linear_model import LogisticRegression  # here: the page starts without it

    is_noise = np.asarray(is_noise, dtype=bool)
    if min(is_noise.sum(), (~is_noise).sum()) < MIN_PER_CLASS:
        return None
    model = LogisticRegression(C=1.0, max_iter=1000).fit(features[decided], is_noise)
    return model.predict_proba(features)[:, 1]
