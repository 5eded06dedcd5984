"""Labels and a noise-share estimate calibrated on the scores of the data at hand.

A detector ranks pairs by a noise score x (higher = more likely noisy: log(1 + loss), or minus a
cosine). A fixed cut on x (RRSITR's training thresholds g1/g2, a keep-fraction) means something
different on every dataset and model; here the cut comes from the distribution of x itself.

`fit_mixture` fits a two-component Gaussian mixture with one shared ("tied") variance to x: the
lower-mean component stands for the clean pairs, the upper one for the noisy pairs. With a shared
variance the posterior log-odds are linear in x, so the posterior is monotone and every label is a
cut on the detector's own ranking (a variance per component makes the posterior bend back in the
tail of the narrow component).

`calibrated_labels`: noisy when the mixture's noisy posterior is at least `noisy_from` (default 0.9:
the mixture puts the pair's odds of being noisy at 9:1 or more), clean when it is below 0.5 (the
mixture's Bayes decision, which keeps most clean pairs), ambiguous in between (the pairs the
mixture leans noisy on without being sure: the band to review by eye).

`noise_share`: the share of noisy pairs, estimated as the mean noisy posterior (at the fit, the
mixture's noisy weight), with a normal interval from the posterior sum: the count of noisy pairs is
a sum of independent Bernoulli(p_i), of variance sum p_i (1 - p_i). The interval is the uncertainty
of the labels given the fitted mixture; it does not cover the bias of a two-Gaussian model whose
components are skewed (benchmarks/README.md measures the error against the truth).

`decoy_share`: the share pinned by decoys instead of a fitted noisy component. A decoy is an image
scored against the caption of another image, so its noise score is drawn from the distribution of
mismatched pairs, observable from the same model. Above a cut t where few clean pairs reach, the
data's tail is the noisy pairs' tail: P(x > t) = share * P_decoy(x > t) + (1 - share) * P_clean(x > t),
so share ~ P(x > t) / P_decoy(x > t), with t the decoys' (1 - tail) quantile. No shape is assumed for
either component; the clean pairs above t bias the estimate up by (1 - share) P_clean(x > t) / tail,
and a smaller tail trades that bias for sampling noise. It estimates the share of pairs that look
like random mismatches: noise milder than that (a caption of a similar image) counts partly clean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.stats import norm
from sklearn.mixture import GaussianMixture

from nctool.errors import NctoolError

CLEAN_BELOW = 0.5  # calibrated labels: clean when the noisy posterior is below this
DECOY_TAIL = 0.25  # decoy_share's cut: the decoys' upper quartile (measured against 0.1 and 0.5, benchmarks/README.md)


@dataclass(frozen=True)
class Mixture:
    """A fitted two-component 1-D Gaussian mixture with one variance; index 0 is the clean (lower-mean) component."""

    weights: tuple[float, float]
    means: tuple[float, float]
    variance: float

    def clean_log_odds(self, x: np.ndarray) -> np.ndarray:
        """log p(clean | x) / p(noisy | x) = log(w_c/w_n) + (m_c - m_n)(2x - m_c - m_n) / (2 s^2), decreasing in x."""
        (w_c, w_n), (m_c, m_n) = self.weights, self.means
        return np.log(w_c / w_n) + (m_c - m_n) * (2 * np.asarray(x, dtype=float) - m_c - m_n) / (2 * self.variance)

    def noisy_posterior(self, x: np.ndarray) -> np.ndarray:
        """p(noisy | x), non-decreasing in x."""
        return expit(-self.clean_log_odds(x))


def fit_mixture(x: np.ndarray, *, seed: int = 0) -> Mixture:
    """Fit the tied two-component Gaussian mixture to the noise scores x (higher = noisier).

    Parameters
    ----------
    x
        One noise score per pair.
    seed
        Seeds the mixture's initialisation (sklearn's random_state).

    Returns
    -------
    Mixture
        Components sorted by mean, clean first.
    """
    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        raise NctoolError(f"mixture: {len(x)} scored pair(s); the mixture needs at least 2")
    gmm = GaussianMixture(2, covariance_type="tied", random_state=seed).fit(x[:, None])
    clean, noisy = np.argsort(gmm.means_[:, 0])
    return Mixture((float(gmm.weights_[clean]), float(gmm.weights_[noisy])),
                   (float(gmm.means_[clean, 0]), float(gmm.means_[noisy, 0])), float(gmm.covariances_[0, 0]))


def calibrated_labels(noisy_posterior: np.ndarray, *, noisy_from: float = 0.9) -> np.ndarray:
    """clean / ambiguous / noisy per pair from its noisy posterior (module docstring).

    Parameters
    ----------
    noisy_posterior
        p(noisy | x) per pair (`Mixture.noisy_posterior`).
    noisy_from
        Noisy when the posterior is at least this (in [CLEAN_BELOW, 1]).

    Returns
    -------
    np.ndarray
        The label strings, one per pair.
    """
    p = np.asarray(noisy_posterior, dtype=float)
    return np.where(p >= noisy_from, "noisy", np.where(p < CLEAN_BELOW, "clean", "ambiguous"))


def noise_share(mixture: Mixture, x: np.ndarray, *, level: float = 0.9) -> dict:
    """The estimated share of noisy pairs among x, with its posterior-sum interval (module docstring).

    Parameters
    ----------
    mixture
        The mixture fitted to x (`fit_mixture`).
    x
        The noise scores.
    level
        Coverage of the interval.

    Returns
    -------
    dict
        `estimate`, `low`, `high` (shares in [0, 1]), `level`, `pairs`.
    """
    p = mixture.noisy_posterior(x)
    estimate, spread = float(p.mean()), float(np.sqrt((p * (1 - p)).sum()) / len(p))
    half = float(norm.ppf((1 + level) / 2)) * spread
    return {"estimate": estimate, "low": max(0.0, estimate - half), "high": min(1.0, estimate + half),
            "level": level, "pairs": len(p)}


def decoy_share(x: np.ndarray, decoys: np.ndarray, *, tail: float = DECOY_TAIL, level: float = 0.9) -> dict:
    """The share of noisy pairs among x, pinned by the noise scores of decoys (module docstring).

    Parameters
    ----------
    x
        The noise scores of the pairs (higher = noisier).
    decoys
        The same detector's noise scores of decoy pairs: images scored against captions of other images.
    tail
        The cut is the decoys' (1 - tail) quantile, in (0, 1).
    level
        Coverage of the interval: normal, from the binomial spread of both tail counts (delta method).

    Returns
    -------
    dict
        `estimate`, `low`, `high` (shares in [0, 1]), `level`, `pairs`, `decoys`.
    """
    x, decoys = np.asarray(x, dtype=float), np.asarray(decoys, dtype=float)
    if not 0 < tail < 1:
        raise NctoolError(f"decoy tail {tail:g}: outside (0, 1); give the share of decoys above the cut, e.g. 0.25")
    if len(x) < 2 or len(decoys) < 2:
        raise NctoolError(f"decoy share: {len(x)} scored pair(s) and {len(decoys)} decoy(s); "
                          f"it needs at least 2 of each")
    cut = np.quantile(decoys, 1 - tail)
    above, decoys_above = float((x > cut).mean()), float((decoys > cut).mean())
    if decoys_above == 0:
        raise NctoolError(f"decoy share: no decoy above the decoys' {1 - tail:g} quantile (all {len(decoys)} tie); "
                          f"score more varied decoys")
    ratio = above / decoys_above
    # Var(a/b) ~ ratio^2 (Var a / a^2 + Var b / b^2), each a binomial share
    spread = ratio * np.sqrt((1 - above) / (len(x) * max(above, 1 / len(x)))
                             + (1 - decoys_above) / (len(decoys) * decoys_above))
    half = float(norm.ppf((1 + level) / 2)) * spread
    estimate = min(1.0, ratio)
    return {"estimate": estimate, "low": max(0.0, ratio - half), "high": min(1.0, ratio + half),
            "level": level, "pairs": len(x), "decoys": len(decoys)}
