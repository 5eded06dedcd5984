import numpy as np
import pytest

from nctool.curate.review.audit import AUDIT_COVERAGE, MIN_AUDIT, agreement, assisted_share, audit_order, audit_share
from nctool.metrics import cohen_kappa, wilson_interval


def test_audit_order_is_a_permutation_fixed_by_the_ids_alone():
    ids = [f"p{i:03d}" for i in range(200)]
    order = audit_order(ids)
    assert sorted(order.tolist()) == list(range(200)) and order.tolist() != list(range(200))
    shuffled = np.random.default_rng(0).permutation(ids)
    assert shuffled[audit_order(shuffled)].tolist() == np.array(ids)[order].tolist()  # the file's order is no input


def test_audit_share_is_the_share_of_noise_in_the_decided_prefix():
    actions = ["drop"] * 10 + ["keep"] * 20 + ["fix"] * 2 + [None] * 8 + ["drop"]  # the last: decided in another order
    report = audit_share(actions)
    # the longest prefix at least 95 % decided that ends on a decision: the first 32 pairs
    assert (report["sample"], report["decided"], report["skipped"], report["noisy"]) == (32, 32, 0, 12)
    assert report["estimate"] == 12 / 32
    assert (report["low"], report["high"]) == wilson_interval(12, 32, level=0.9, population=41)
    assert report["needed"] == 0 and report["population"] == 41


def test_a_skipped_pair_stays_out_of_the_audit_and_is_counted():
    actions = ["keep"] * 20 + [None] + ["drop"] * 19
    assert np.cumsum([a is not None for a in actions])[-1] >= AUDIT_COVERAGE * 40  # 39 of 40: 97.5 % decided
    report = audit_share(actions)
    assert (report["sample"], report["decided"], report["skipped"], report["noisy"]) == (40, 39, 1, 19)
    assert report["estimate"] == 19 / 39


def test_no_share_below_the_minimum_sample():
    report = audit_share(["drop"] * (MIN_AUDIT - 1) + [None] * 10)
    assert report["estimate"] is None and report["low"] is None and report["needed"] == 1
    assert audit_share([])["sample"] == 0


def test_agreement_compares_noise_against_keep_on_the_pairs_both_decided():
    first = ["drop", "fix", "keep", "keep", None, "drop"]
    second = ["fix", "keep", "keep", "keep", "drop", None]
    result = agreement(first, second)
    # both decided the first four; they differ on the second (fix is noise, keep is not)
    assert result == {"pairs": 4, "agree": 0.75, "kappa": cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]), "disagree": 1}
    assert result["kappa"] == pytest.approx(0.5)
    assert agreement([None, "keep"], ["keep", None]) == {"pairs": 0, "agree": None, "kappa": None, "disagree": 0}


def test_the_assisted_share_corrects_the_mean_prediction_by_the_sampled_residuals():
    # 20 pairs predicted 0.2 (ten) and 0.8 (ten): mean 0.5; four sampled, decided 0, 1, 1, 1 against predictions
    # 0.2, 0.2, 0.8, 0.8: residuals -0.2, 0.8, 0.2, 0.2, mean 0.25 -> 0.75. Their sd is sqrt(0.51 / 3); the
    # half-width is t(0.95, 3 df) = 2.3534 times sd / 2 times sqrt(16 / 19), the finite-population factor
    predicted = np.array([0.2] * 10 + [0.8] * 10)
    found = assisted_share(np.array([0, 1, 1, 1]), predicted, np.array([0, 1, 10, 11]), level=0.9)
    half = 2.353363 * np.sqrt(0.51 / 3) / 2 * np.sqrt(16 / 19)
    assert found["estimate"] == pytest.approx(0.75)
    assert (found["low"], found["high"]) == (pytest.approx(0.75 - half, abs=1e-6), 1.0)
    assert assisted_share(np.array([0, 1]), np.array([0.2, np.nan, 0.8]), np.array([0, 2]), level=0.9) is None


def test_predictions_that_are_right_give_the_share_exactly_and_wrong_ones_stay_unbiased():
    # 400 pairs, 40 % noisy; a uniform sample of 100. Predictions equal to the truth leave no residual: the share is
    # known exactly. Predictions that are all 0.1 (a detector 30 points low) still give an estimate centred on the
    # truth: over 300 samples the mean is within a point and the 90 % interval holds the truth at least 85 % of times
    rng = np.random.default_rng(0)
    truth = rng.permutation(np.arange(400) < 160)
    exact = assisted_share(truth[:100], truth.astype(float), np.arange(100), level=0.9)
    assert exact == {"estimate": 0.4, "low": 0.4, "high": 0.4}
    estimates, held = [], []
    for _ in range(300):
        chosen = rng.choice(400, 100, replace=False)
        found = assisted_share(truth[chosen], np.full(400, 0.1), chosen, level=0.9)
        estimates.append(found["estimate"])
        held.append(found["low"] <= 0.4 <= found["high"])
    assert abs(np.mean(estimates) - 0.4) < 0.01 and np.mean(held) >= 0.85


def test_the_audit_checks_each_label_on_its_sampled_pairs():
    # 40 pairs in audit order, 32 decided: the first 20 labelled clean (1 dropped), the next 12 noisy (10 dropped)
    actions = ["keep"] * 19 + ["drop"] + ["drop"] * 10 + ["keep"] * 2 + [None] * 8
    labels = ["clean"] * 20 + ["noisy"] * 12 + ["ambiguous"] * 8
    report = audit_share(actions, predicted=[0.1] * 20 + [0.9] * 12 + [0.5] * 8, labels=labels)
    clean, noisy = report["labels"]["clean"], report["labels"]["noisy"]
    assert (clean["decided"], clean["noisy"], clean["estimate"]) == (20, 1, 0.05)
    assert (clean["low"], clean["high"]) == wilson_interval(1, 20, level=0.9, population=20)
    assert (noisy["decided"], noisy["noisy"]) == (12, 10) and "ambiguous" not in report["labels"]
    # the detector's mean prediction (2 + 10.8 + 4) / 40 = 0.42, corrected by the residuals' mean: clean 19 x -0.1
    # + 0.9, noisy 10 x 0.1 + 2 x -0.9, -1.8 over 32 -> 0.36375 (the sample alone: 11 / 32 = 0.34375)
    assert report["assisted"]["estimate"] == pytest.approx(0.36375) and report["estimate"] == 11 / 32
    assert audit_share(actions[:20])["estimate"] is None and "labels" not in audit_share(actions)
