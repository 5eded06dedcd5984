"""Retrieval recalls and noise-detection metrics, as pure functions of arrays, and their per-detector tables.

`detection_table` is the one place per-detector counts and detection metrics against ground truth
are computed (for `score`'s summary, `bench` and the benchmarks).
"""

import math
from statistics import NormalDist
from typing import Iterator

import numpy as np
import pandas as pd

from nctool.errors import NctoolError
from nctool.schema import LABELS

DETECTION_METRICS = ("auroc", "auprc", "precision", "recall", "f1")


def _ratio(numerator, denominator) -> float:
    """numerator / denominator as a float, NaN when the denominator is 0."""
    return float(numerator / denominator) if denominator else math.nan


def retrieval_recalls(scores, caption_image_index, ks=(1, 5, 10), chunk_elements: int = 2**24) -> dict:
    """Recall@K both ways, in percent.

    ``scores[i, j]`` is the similarity of image i and caption j (numpy array or torch tensor,
    on any device); ``caption_image_index[j]`` is the index of caption j's image. A caption's
    rank is the number of candidates with a strictly greater score, so ties count in the
    ground truth's favour.

    - image -> text: image i is a hit at K if any of its captions has rank < K among all
      captions (the rank of its best-scoring caption);
    - text -> image: caption j is a hit at K if its image has rank < K among all images.

    Returns ``i2t_r{k}`` and ``t2i_r{k}`` for each k, ``rsum`` (their sum) and ``mr`` (their
    mean). Works through ``scores`` in blocks of about ``chunk_elements`` entries.
    """
    import torch  # here, not at the top: the CLI imports this module at start (nctool filter, review)

    scores = torch.as_tensor(scores)
    n_images, n_captions = scores.shape
    owner = torch.as_tensor(caption_image_index, device=scores.device).long()
    if owner.shape != (n_captions,) or owner.min() < 0 or owner.max() >= n_images:
        raise NctoolError(
            f"caption_image_index: needs one image index in [0, {n_images}) for each of the "
            f"{n_captions} captions; pass the image row of every caption column"
        )
    if (torch.bincount(owner, minlength=n_images) == 0).any():
        raise NctoolError("caption_image_index: some images have no caption; drop them from the scores")
    positive = scores[owner, torch.arange(n_captions, device=scores.device)]
    best_own = torch.full((n_images,), -math.inf, dtype=scores.dtype, device=scores.device)
    best_own = best_own.scatter_reduce(0, owner, positive, reduce="amax")
    i2t_rank = torch.empty(n_images, dtype=torch.long, device=scores.device)
    t2i_rank = torch.zeros(n_captions, dtype=torch.long, device=scores.device)
    step = max(1, chunk_elements // n_captions)
    for start in range(0, n_images, step):
        block = scores[start : start + step]
        i2t_rank[start : start + step] = (block > best_own[start : start + step, None]).sum(dim=1)
        t2i_rank += (block > positive).sum(dim=0)
    recalls = {}
    for direction, rank in (("i2t", i2t_rank), ("t2i", t2i_rank)):
        for k in ks:
            recalls[f"{direction}_r{k}"] = 100 * (rank < k).double().mean().item()
    rsum = sum(recalls.values())
    return {**recalls, "rsum": rsum, "mr": rsum / len(recalls)}


def detection_metrics(noisy_truth, noise_score, predicted_noisy=None) -> dict:
    """How well a score (higher = more likely noisy) and a hard prediction find the noisy pairs.

    Returns ``auroc`` and ``auprc`` (average precision, noisy = positive), both NaN when the
    truth holds only one class; with ``predicted_noisy`` also ``precision``, ``recall``, ``f1``
    of the predicted-noisy set and its ``predicted_share`` of all rows (NaN where undefined).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    truth = np.asarray(noisy_truth, dtype=bool)
    score = np.asarray(noise_score, dtype=float)
    both_classes = 0 < truth.sum() < truth.size
    metrics = {
        "auroc": float(roc_auc_score(truth, score)) if both_classes else math.nan,
        "auprc": float(average_precision_score(truth, score)) if both_classes else math.nan,
    }
    if predicted_noisy is not None:
        predicted = np.asarray(predicted_noisy, dtype=bool)
        caught = np.sum(truth & predicted)
        metrics.update(
            precision=_ratio(caught, predicted.sum()),
            recall=_ratio(caught, truth.sum()),
            f1=_ratio(2 * caught, predicted.sum() + truth.sum()),
            predicted_share=_ratio(predicted.sum(), predicted.size),
        )
    return metrics


def label_metrics(noisy_truth, labels) -> list[dict]:
    """One row per bin of LABELS ("clean", "ambiguous", "noisy"), in that order.

    ``labels`` holds those strings (from split codes: ``np.asarray(LABELS)[codes]``).
    Each row: ``label``, ``count``, ``share`` of all rows, ``noisy_rate`` (share of truly noisy
    rows in the bin), and for the clean and noisy bins ``precision`` (share of the bin that is
    truly of its class) and ``recall`` (share of all rows of that class the bin caught); these
    two are NaN for the ambiguous bin, and wherever a denominator is 0.
    """
    truth = np.asarray(noisy_truth, dtype=bool)
    labels = np.asarray(labels)
    known = np.isin(labels, LABELS)
    if not known.all():
        unknown = sorted(set(labels[~known].tolist()))
        raise NctoolError(f"labels: unknown values {unknown}; use only {', '.join(LABELS)}")
    of_class = {"clean": ~truth, "noisy": truth}
    rows = []
    for name in LABELS:
        in_bin = labels == name
        count = int(in_bin.sum())
        row = {
            "label": name,
            "count": count,
            "share": _ratio(count, labels.size),
            "noisy_rate": _ratio(np.sum(truth & in_bin), count),
            "precision": math.nan,
            "recall": math.nan,
        }
        if name in of_class:
            caught = np.sum(of_class[name] & in_bin)
            row.update(precision=_ratio(caught, count), recall=_ratio(caught, of_class[name].sum()))
        rows.append(row)
    return rows


def detection_table(scores: pd.DataFrame, truth: pd.Series | None = None) -> list[dict]:
    """One row per detector of a scores table, in order of appearance: what it found and how well.

    Parameters
    ----------
    scores
        A scores table (`read_scores`, or the frame `nctool.detect.score` writes).
    truth
        The `noisy` ground truth, a boolean Series indexed by pair_id (every scored pair must have
        one), e.g. ``read_table(path, columns=["pair_id", "noisy"]).set_index("pair_id")["noisy"]``;
        None when there is none.

    Each row: `detector`, the count of each label (schema.LABELS) and, with `truth`, `auroc` and
    `auprc` of 1 - reliability and `precision`, `recall`, `f1` of the noisy label
    (detection_metrics; NaN where undefined).
    """
    rows = []
    for name, part, noisy in _per_detector(scores, truth):
        counts = part["label"].value_counts()
        row = {"detector": name, **{label: int(counts.get(label, 0)) for label in LABELS}}
        if noisy is not None:
            metrics = detection_metrics(noisy, 1 - part["reliability"].to_numpy(), part["label"].to_numpy() == "noisy")
            row.update({key: metrics[key] for key in DETECTION_METRICS})
        rows.append(row)
    return rows


def label_table(scores: pd.DataFrame, truth: pd.Series | None = None) -> list[dict]:
    """label_metrics rows (one per label) of each detector, `detector` first; [] without truth."""
    return [{"detector": name, **row} for name, part, noisy in _per_detector(scores, truth) if noisy is not None
            for row in label_metrics(noisy, part["label"].to_numpy())]


def statement_table(scores: pd.DataFrame, statements: dict[str, dict], truth: pd.Series) -> list[dict]:
    """What each detector stated (nctool.schema.noise_statements) beside what holds in `truth`: one row per
    detector with a statement, its keys plus `truth` (the share of noisy pairs), `clean_truth` (that of
    its clean set) and `noisy_truth` (the precision of its noisy set); None for an empty set."""
    rows = []
    for name, part, noisy in _per_detector(scores, truth):
        if name not in statements:
            continue
        clean, flagged = (part["label"] == "clean").to_numpy(), (part["label"] == "noisy").to_numpy()
        rows.append({"detector": name, **statements[name], "truth": float(noisy.mean()),
                     "clean_truth": float(noisy[clean].mean()) if clean.any() else None,
                     "noisy_truth": float(noisy[flagged].mean()) if flagged.any() else None})
    return rows


def _per_detector(scores: pd.DataFrame,
                  truth: pd.Series | None) -> Iterator[tuple[str, pd.DataFrame, np.ndarray | None]]:
    """(detector, its rows, their ground truth or None) per detector."""
    for name, part in scores.groupby("detector", sort=False):
        if truth is None:
            yield name, part, None
            continue
        noisy = truth.reindex(part["pair_id"].to_numpy())
        if noisy.isna().any():
            raise NctoolError(f"truth: no `noisy` value for scored pair '{noisy.index[noisy.isna()][0]}'; "
                              f"give the ground truth of the dataset the scores were made from")
        yield name, part, noisy.to_numpy(dtype=bool)


def wilson_interval(noisy: int, decided: int, *, level: float = 0.9,
                    population: int | None = None) -> tuple[float, float]:
    """The Wilson score interval of a share from `noisy` of `decided` sampled pairs, at `level`.

    With `population` (how many pairs the sample was drawn from, without replacement), the
    sampling variance shrinks by the finite-population factor (N - n) / (N - 1): an audit of most
    of a small queue is that much surer. Returns (low, high); (0, 1) when nothing was decided.
    """
    if not 0 <= noisy <= decided:
        raise NctoolError(f"wilson_interval: {noisy} noisy of {decided} decided; give 0 <= noisy <= decided")
    if decided == 0:
        return 0.0, 1.0
    factor = 1.0 if population is None or population <= 1 else max((population - decided) / (population - 1), 0.0)
    if factor == 0:  # the whole population was decided: the share is known
        return noisy / decided, noisy / decided
    n = decided / factor  # the effective sample size
    z = NormalDist().inv_cdf(0.5 + level / 2)
    share = noisy / decided
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def cohen_kappa(first, second) -> float | None:
    """Cohen's kappa of two raters' yes/no judgements of the same items (boolean arrays of one length).

    None when chance agreement is certain (both raters gave one and the same answer to every item),
    where kappa is undefined.
    """
    first, second = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    if first.shape != second.shape or first.ndim != 1 or not len(first):
        raise NctoolError("cohen_kappa: needs two non-empty judgements of the same items")
    observed = float(np.mean(first == second))
    chance = float(first.mean() * second.mean() + (1 - first.mean()) * (1 - second.mean()))
    return None if chance == 1 else (observed - chance) / (1 - chance)
