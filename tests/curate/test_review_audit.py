import numpy as np
import pytest

from nctool.curate.review.audit import AUDIT_COVERAGE, MIN_AUDIT, agreement, audit_order, audit_share
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
