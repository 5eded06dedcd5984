import numpy as np
import pytest

from nctool.detect.calibration import Mixture, calibrated_labels, decoy_share, fit_mixture, noise_share
from nctool.errors import NctoolError

HAND = Mixture(weights=(0.75, 0.25), means=(0.0, 2.0), variance=1.0)


def test_posterior_on_a_hand_mixture():
    # log-odds clean = log 3 + (0 - 2)(2x - 2) / 2 = log 3 - 2(x - 1): log 3 at x = 1, log 3 + 2 at x = 0
    np.testing.assert_allclose(HAND.clean_log_odds(np.array([0.0, 1.0, 2.0])), np.log(3) + np.array([2.0, 0.0, -2.0]))
    np.testing.assert_allclose(HAND.noisy_posterior(np.array([1.0])), [0.25])
    assert (np.diff(HAND.noisy_posterior(np.linspace(-5, 5, 101))) > 0).all()


def test_calibrated_labels_cut_the_posterior():
    labels = calibrated_labels(np.array([0.1, 0.49, 0.5, 0.89, 0.9, 1.0]))
    assert labels.tolist() == ["clean", "clean", "ambiguous", "ambiguous", "noisy", "noisy"]
    assert calibrated_labels(np.array([0.6, 0.7]), noisy_from=0.7).tolist() == ["ambiguous", "noisy"]


def test_noise_share_interval_is_the_posterior_sum_spread():
    # four pairs at x = 1, posterior 0.25 each: sd of the count sqrt(4 * 0.25 * 0.75), over 4 pairs
    share = noise_share(HAND, np.ones(4), level=0.9)
    half = 1.6448536 * np.sqrt(0.75) / 4
    assert share["estimate"] == pytest.approx(0.25) and share["pairs"] == 4
    assert (share["low"], share["high"]) == (pytest.approx(0.0), pytest.approx(0.25 + half))


def test_fit_mixture_recovers_a_known_noise_share():
    rng = np.random.default_rng(1)
    noisy = np.arange(3000) < 900                                    # 30 % noise
    x = np.where(noisy, rng.normal(3.0, 0.3, 3000), rng.normal(1.0, 0.3, 3000))
    mixture = fit_mixture(x, seed=0)
    share = noise_share(mixture, x)
    assert abs(mixture.weights[1] - 0.3) <= 0.03 and abs(share["estimate"] - 0.3) <= 0.03
    assert share["low"] <= share["estimate"] <= share["high"]
    labels = calibrated_labels(mixture.noisy_posterior(x))
    assert noisy[labels == "noisy"].mean() >= 0.9 and (labels[~noisy] == "clean").mean() >= 0.9


def test_fit_mixture_needs_two_pairs():
    with pytest.raises(NctoolError, match="mixture: 1 scored pair"):
        fit_mixture(np.array([1.0]))


def test_decoy_share_is_the_tail_ratio():
    # cut = 0.75 quantile of 1..4 = 3.25: a quarter of the decoys and one pair in eight above it
    share = decoy_share(np.array([0.0, 0, 0, 0, 0, 1, 2, 4]), np.array([1.0, 2, 3, 4]), tail=0.25, level=0.9)
    half = 1.6448536 * 0.5 * np.sqrt(0.875 / (8 * 0.125) + 0.75 / (4 * 0.25))
    assert share["estimate"] == pytest.approx(0.5) and (share["pairs"], share["decoys"]) == (8, 4)
    assert (share["low"], share["high"]) == (pytest.approx(0.0), pytest.approx(min(1.0, 0.5 + half)))


def test_decoy_share_recovers_skewed_components_the_tied_mixture_misses():
    # 20 % noise; clean scores skew right (6 * Beta(1.2, 6), none above the cut), noisy ones are
    # N(4, 0.5) like the decoys: the tied mixture lands near 0.25, the tail ratio within a point
    rng = np.random.default_rng(0)
    noisy = np.arange(20000) < 4000
    x = np.where(noisy, rng.normal(4.0, 0.5, 20000), 6 * rng.beta(1.2, 6, 20000))
    share = decoy_share(x, rng.normal(4.0, 0.5, 20000))
    assert abs(noise_share(fit_mixture(x), x)["estimate"] - 0.2) > 0.04
    assert abs(share["estimate"] - 0.2) <= 0.01 and share["low"] <= 0.2 <= share["high"]


@pytest.mark.parametrize("x, decoys, tail, match", [
    (np.ones(4), np.arange(4.0), 1.0, "decoy tail 1: outside"),
    (np.ones(4), np.array([1.0]), 0.25, "4 scored pair.* and 1 decoy"),
    (np.ones(4), np.ones(4), 0.25, "no decoy above"),
])
def test_decoy_share_refuses(x, decoys, tail, match):
    with pytest.raises(NctoolError, match=match):
        decoy_share(x, decoys, tail=tail)
