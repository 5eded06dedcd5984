import math

import numpy as np
import pandas as pd
import pytest
import torch

from nctool.errors import NctoolError
from nctool.metrics import (
    cohen_kappa,
    detection_metrics,
    label_metrics,
    retrieval_recalls,
    statement_table,
    wilson_interval,
)

# 2 images x 4 captions; captions 0, 1 belong to image 0 and captions 2, 3 to image 1.
SCORES = np.array([[0.5, 0.1, 0.8, 0.3], [0.2, 0.4, 0.7, 0.6]])
OWNER = np.array([0, 0, 1, 1])


def test_recalls_counted_by_hand():
    # i2t: image 0's best own caption (0.5) is beaten by caption 2 (0.8) -> rank 1; image 1 -> rank 0.
    # t2i: caption 0 rank 0; caption 1 (0.1 vs 0.4) rank 1; caption 2 (0.7 vs 0.8) rank 1; caption 3 rank 0.
    recalls = retrieval_recalls(SCORES, OWNER, ks=(1, 2))
    assert recalls == pytest.approx(
        {"i2t_r1": 50.0, "i2t_r2": 100.0, "t2i_r1": 50.0, "t2i_r2": 100.0, "rsum": 300.0, "mr": 75.0}
    )


def test_default_ks_and_torch_input():
    recalls = retrieval_recalls(torch.tensor(SCORES), torch.tensor(OWNER))
    assert list(recalls) == ["i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "rsum", "mr"]
    assert recalls["rsum"] == pytest.approx(500.0)
    assert recalls["mr"] == pytest.approx(500.0 / 6)


def test_ties_count_for_the_ground_truth():
    recalls = retrieval_recalls(np.full((2, 2), 0.5), [0, 1], ks=(1,))
    assert recalls["i2t_r1"] == recalls["t2i_r1"] == 100.0


def test_chunked_ranks_match_brute_force():
    rng = np.random.default_rng(0)
    n_images, per_image = 7, 3
    owner = np.repeat(np.arange(n_images), per_image)
    scores = rng.normal(size=(n_images, n_images * per_image)).round(1)  # rounding makes ties
    ks = (1, 2, 5)
    expected = {}
    for k in ks:
        hits = [
            any(np.sum(scores[i] > scores[i, j]) < k for j in np.flatnonzero(owner == i)) for i in range(n_images)
        ]
        expected[f"i2t_r{k}"] = 100 * np.mean(hits)
    for k in ks:
        hits = [np.sum(scores[:, j] > scores[owner[j], j]) < k for j in range(len(owner))]
        expected[f"t2i_r{k}"] = 100 * np.mean(hits)
    for chunk in (1, 20, 10**6):
        recalls = retrieval_recalls(scores, owner, ks=ks, chunk_elements=chunk)
        assert {key: recalls[key] for key in expected} == pytest.approx(expected)


def test_recalls_reject_bad_caption_index():
    with pytest.raises(NctoolError, match="no caption"):
        retrieval_recalls(SCORES, [0, 0, 0, 0])
    with pytest.raises(NctoolError, match="caption_image_index"):
        retrieval_recalls(SCORES, [0, 1, 2, 0])
    with pytest.raises(NctoolError, match="caption_image_index"):
        retrieval_recalls(SCORES, [0, 1])


def test_detection_metrics_by_hand():
    truth = [False, True, False, True]
    score = [0.1, 0.35, 0.4, 0.8]
    predicted = [False, True, True, True]
    metrics = detection_metrics(truth, score, predicted)
    # AUROC: of the 4 (noisy, clean) pairs only (0.35, 0.4) is ordered wrongly -> 3/4.
    # AP: ranked 0.8 (noisy), 0.4, 0.35 (noisy), 0.1 -> (1/1 + 2/3) / 2.
    assert metrics == pytest.approx(
        {"auroc": 0.75, "auprc": 5 / 6, "precision": 2 / 3, "recall": 1.0, "f1": 0.8, "predicted_share": 0.75}
    )
    assert set(detection_metrics(truth, score)) == {"auroc", "auprc"}


@pytest.mark.parametrize("truth", [[False, False, False], [True, True, True]])
def test_detection_metrics_with_one_class(truth):
    metrics = detection_metrics(np.array(truth), np.array([0.2, 0.5, 0.9]), np.array([False, False, False]))
    assert math.isnan(metrics["auroc"]) and math.isnan(metrics["auprc"])
    assert math.isnan(metrics["precision"])  # nothing predicted
    assert metrics["predicted_share"] == 0.0


def test_label_metrics_by_hand():
    truth = [False, False, True, False, True, True, False]
    labels = ["clean", "clean", "clean", "ambiguous", "noisy", "noisy", "noisy"]
    clean, ambiguous, noisy = label_metrics(truth, labels)
    assert clean == pytest.approx(
        {"label": "clean", "count": 3, "share": 3 / 7, "noisy_rate": 1 / 3, "precision": 2 / 3, "recall": 2 / 4}
    )
    assert noisy == pytest.approx(
        {"label": "noisy", "count": 3, "share": 3 / 7, "noisy_rate": 2 / 3, "precision": 2 / 3, "recall": 2 / 3}
    )
    assert ambiguous["count"] == 1 and ambiguous["share"] == pytest.approx(1 / 7)
    assert ambiguous["noisy_rate"] == 0.0
    assert math.isnan(ambiguous["precision"]) and math.isnan(ambiguous["recall"])


def test_label_metrics_empty_bin_and_unknown_label():
    rows = label_metrics([True, False], np.array(["noisy", "clean"]))
    assert rows[1]["count"] == 0 and math.isnan(rows[1]["noisy_rate"])
    assert rows[0]["precision"] == rows[2]["precision"] == 1.0
    with pytest.raises(NctoolError, match="unknown values"):
        label_metrics([True], ["dirty"])


def test_statement_table_sets_what_was_stated_beside_the_truth():
    scores = pd.DataFrame({"pair_id": ["a", "b", "c", "d", "a"], "detector": ["rrsitr"] * 4 + ["loss-gmm"],
                           "label": ["clean", "clean", "noisy", "ambiguous", "noisy"], "reliability": 0.5})
    truth = pd.Series([False, True, True, False], index=["a", "b", "c", "d"])
    [row] = statement_table(scores, {"rrsitr": {"estimate": 0.4, "clean": 2}}, truth)
    assert row == {"detector": "rrsitr", "estimate": 0.4, "clean": 2, "truth": 0.5, "clean_truth": 0.5,
                   "noisy_truth": 1.0}
    [row] = statement_table(scores[scores["label"] != "noisy"], {"rrsitr": {}}, truth)
    assert (row["truth"], row["noisy_truth"]) == (1 / 3, None)


def test_wilson_interval_by_hand():
    # z = 1.6449 at 90 %; 10 of 20: centre (0.5 + z^2/40) / (1 + z^2/20) = 0.5, half-width
    # z * sqrt(0.25/20 + z^2/1600) / (1 + z^2/20) = 0.17260
    assert wilson_interval(10, 20, level=0.9) == pytest.approx((0.32740, 0.67260), abs=1e-5)
    # 0 of 10: centre (z^2/20) / (1 + z^2/10) = 0.10647, half-width z * (z/20) / (1 + z^2/10) the same
    assert wilson_interval(0, 10, level=0.9) == pytest.approx((0.0, 0.21294), abs=1e-5)
    # from 40 pairs, 20 sampled: the variance shrinks by (40 - 20) / 39, as if 39 had been sampled
    assert wilson_interval(10, 20, population=40) == pytest.approx(wilson_interval(19.5, 39), abs=1e-12)
    assert wilson_interval(7, 20, population=20) == (0.35, 0.35)  # every pair decided: the share is known
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(NctoolError, match="give 0 <= noisy <= decided"):
        wilson_interval(3, 2)


def test_cohen_kappa_by_hand():
    # observed agreement 3/4; chance 0.5 * 0.25 + 0.5 * 0.75 = 0.5; kappa (0.75 - 0.5) / 0.5
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)
    assert cohen_kappa([1, 1], [1, 1]) is None  # both always yes: chance agreement is certain
    with pytest.raises(NctoolError, match="same items"):
        cohen_kappa([1, 0], [1])
