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

`decoy_calibration`: what `nctool score` states, the target-decoy way (docs/labels.md). Decoys are
mismatched by construction, so they draw the noise scores of noisy pairs; the data is a mixture
f = pi f_decoy + (1 - pi) f_clean with pi the noise share.
- pi: decoy_share's estimate at the cut lambda (the decoys' lambda quantile) that Storey's bootstrap
  rule picks from LAMBDAS (the lambda whose bootstrap estimates sit closest, in mean squared error,
  to the smallest estimate of the grid). Its interval is percentile, over resamples that each make
  their own choice of lambda by the same rule (against their own smallest estimate), so that it
  carries the choice's variability too: on 2,400 drawn pairs the interval of the chosen lambda's
  estimates alone covered the truth in 60-95 % of the cells, this one in 80-100 %.
- noisy_probability(x) = pi f_decoy(x) / f(x), the local rate of noise at x: the density ratio from an
  isotonic (non-decreasing) fit of "is a decoy" on x over data and decoys, p(x) = M f_decoy / (M f_decoy
  + N f), so f_decoy / f = (N / M) p / (1 - p); clipped to [0, 1].
- q_value of a pair: a bound on the contamination of the smallest clean set holding it, the clean set being
  all pairs at or below a noise score t: pi * N * U(#{decoys <= t}) / M / #{x <= t}, the decoys below t
  standing for the noisy pairs below t. U(d) is the upper end of the Poisson interval of a count d at the
  level's one-sided share (Garwood's; (1 + level) / 2 = 0.95, as the share is taken at the top of its 90 %
  interval), and it is made non-decreasing in x as FDR q-values are. Few decoys below a cut make a
  contamination estimate that is mostly noise: with the count itself (plus one, as in knockoff+), clean sets
  of 22-103 pairs at 80 % noise, stated 2-5 % noisy, measured 9-18 %; with the bound, none is claimed there,
  and at 20-40 % noise the sets shrink by 1-7 % (benchmarks/README.md, "Labels against decoys").
- The noisy set's precision, the other way: the pairs at or above t hold pi * N * #{decoys >= t} / M
  noisy ones; a pair's `noisy_precisions` is the best precision of a set {x >= t} holding it.
- labels: noisy when noisy_precisions >= noisy_from (the largest top set whose estimated precision
  is at least that, 0.95 by default: a set cut at precision p measures about p, so 0.95 keeps it above
  0.9); clean when q_value <= max_contamination (the largest such set, lowest noise scores first);
  ambiguous otherwise. The clean set is cut at the high end of the share's interval, so that it
  holds there too (the q_value column is that bound); the statement gives point estimates, the clean
  set's contamination (the count plus one) with an interval from its bootstrap's low end to the higher
  of the bootstrap's top and the set's bound (None: no set reaches it; the bootstrap alone resamples
  the same scores and cannot see where decoys and noisy pairs differ at the clean end), and the noisy
  set's precision with the precision at each end of the share's interval. The precision is linear in
  the share, and a bootstrap cannot see the share's main error: above Storey's cut the share assumes
  no clean pair, and a resample's share and its top set's precision read the same tail, so the set
  came out all noise in nearly every resample (zero-shot at 20 % noise: bootstrap intervals from
  0.82-0.92 up, measured 0.65-0.78). The share's own interval, each resample choosing its cut, is the
  honest spread. (The local rate `noisy_probability` flagged sets whose stated precision 0.99 held 0.83:
  its isotonic fit puts the top block at "only decoys", so it is per-pair evidence, not the cut.)
- Share not pinned: with a 90 % interval wider than MAX_SHARE_WIDTH no pair is labelled. A 1-epoch
  model on 120 pairs, which tells pairs from decoys barely better than chance, stated a share of 0.96
  (0.59-1.00; truth 0.40) and would have called every pair noisy at a precision of 0.96.
- Not enough evidence: a cut counts only with MIN_DECOYS_ABOVE decoys above it; with fewer decoys
  than any cut needs, nothing is stated (share None) and every pair is ambiguous.
- Same-scene decoys (`scene_decoys`: a caption of another image of the pair's category) stand for
  hard noise, which random decoys cannot see (on category noise they stated 0-3 % against 20-60 %).
  When given, their share is stated too, the clean set is cut against them (at the top of their
  share's interval), and the noisy set's precision is the lower of its two estimates: against random
  decoys alone, `rrsitr-attributes --tagger-weight 4` flagged 233-474 pairs of category noise at a
  stated 0.95 that measured 0.60-0.82 (hard noise scores milder than random captions, so random decoys
  overstate the noise in the top set). The share stays with the random decoys.
The bootstrap resamples images (all pairs of an image, and their decoys, go together): captions of
one image are not independent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit
from scipy.stats import chi2, norm
from sklearn.isotonic import IsotonicRegression
from sklearn.mixture import GaussianMixture

from nctool.errors import NctoolError

CLEAN_BELOW = 0.5  # calibrated labels: clean when the noisy posterior is below this
DECOY_TAIL = 0.25  # decoy_share's cut: the decoys' upper quartile (measured against 0.1 and 0.5, benchmarks/README.md)
# decoy_calibration's grid of cuts (decoy quantiles), Storey's. Ending it at 0.8 was tried: the rule's pull to the
# noisiest cut (its target is the grid's least estimate) had made the worst out-of-fold cells 18 points low, and the
# mean error over the benchmark cells fell from 3.6 to 2.5 points; but where clean pairs overlap the decoys the bias
# lasts to the top cuts, and the zero-shot demo then stated 50.6 % (90 %: 45.6-55.7) against 39.8 %: confidently
# wrong, where the full grid is wide when it is wrong (benchmarks/README.md, "Labels against decoys")
LAMBDAS = np.round(np.arange(0.05, 0.951, 0.05), 2)
BOOTSTRAPS = 200  # decoy_calibration's resamples of images
MAX_CONTAMINATION = 0.05  # clean set: the estimated share of noisy pairs it may hold
# the precision a noisy set should hold for a curator to drop it unseen: `noisy_from`'s default 0.95 is chosen to keep
# a set above it; `score` says so when the low end of a set's stated precision is below it
NOISY_PROMISE = 0.9
# a cut is used only with this many decoys above it (their count's relative error 1/sqrt(50) = 14 %): with fewer,
# the smallest estimate of the grid is noise (24 pairs stated a share of 0 and called every pair clean)
MIN_DECOYS_ABOVE = 50
# labels need a pinned share: with a 90 % interval wider than this, a set's stated error could be off by more than
# the error itself (the widest interval of the 2,400-pair benchmark cells was 0.31, rrsitr zero-shot at 80 %)
MAX_SHARE_WIDTH = 0.3


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
        `method` ("mixture"), `estimate`, `low`, `high` (shares in [0, 1]), `level`, `pairs`.
    """
    p = mixture.noisy_posterior(x)
    estimate, spread = float(p.mean()), float(np.sqrt((p * (1 - p)).sum()) / len(p))
    half = float(norm.ppf((1 + level) / 2)) * spread
    return {"method": "mixture", "estimate": estimate, "low": max(0.0, estimate - half),
            "high": min(1.0, estimate + half), "level": level, "pairs": len(p)}


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


@dataclass(frozen=True)
class DecoyCalibration:
    """What decoy_calibration states about one detector's scores (module docstring)."""

    share: float                    # estimated share of noisy pairs
    share_interval: tuple[float, float] | None  # share and interval None: not enough decoys to state them
    cut: float | None               # Storey's lambda: the decoy quantile the share was read at
    noisy_probability: np.ndarray   # [N] the local rate of noise at each pair's score
    q_value: np.ndarray             # [N] contamination of the smallest clean set holding the pair
    labels: np.ndarray              # [N] clean / ambiguous / noisy
    level: float
    x: np.ndarray = field(repr=False)          # what the statement was made from: the pairs' noise scores,
    decoys: np.ndarray = field(repr=False)     # the decoys', the image resamples and the share in each
    resamples: list = field(repr=False)
    boot_shares: np.ndarray = field(repr=False)
    # same-scene decoys: (their scores, share, interval, image resamples, each resample's share)
    scene: tuple | None = field(default=None, repr=False)

    def summary(self, labels: np.ndarray | None = None) -> dict:
        """The JSON-able statement (scores-file metadata, score's and review's figures) for `labels` (default:
        this calibration's; a fixed rule's labels, cuts on the same scores, are stated the same way): the share,
        the clean set's estimated contamination with its interval, the noisy set's estimated precision."""
        labels = self.labels if labels is None else np.asarray(labels)
        clean, noisy = labels == "clean", labels == "noisy"
        low, high = self.share_interval or (None, None)
        statement = {"method": "decoys", "estimate": self.share, "low": low, "high": high, "level": self.level,
                     "cut": self.cut, "pairs": len(labels), "decoys_needed": round(MIN_DECOYS_ABOVE / (1 - LAMBDAS[0])),
                     "pinned": self.share is not None and high - low <= MAX_SHARE_WIDTH,
                     "clean": int(clean.sum()), "clean_contamination": None, "clean_low": None, "clean_high": None,
                     "noisy": int(noisy.sum()), "noisy_precision": None, "noisy_low": None, "noisy_high": None}
        if self.scene is not None:
            statement.update(scene_estimate=self.scene[1], scene_low=self.scene[2][0], scene_high=self.scene[2][1])
        if self.share is None:
            return statement
        if clean.any():  # against the decoys the clean set was cut by: same-scene ones when there are
            cut, tail = self.x[clean].max(), (1 - self.level) / 2
            decoys, share, resamples, boot_shares = ((self.scene[0], self.scene[1], self.scene[3], self.scene[4])
                                                     if self.scene is not None else
                                                     (self.decoys, self.share, self.resamples, self.boot_shares))
            boot = [_contamination(self.x[pairs], decoys[fakes], boot_share, cut)
                    for (pairs, fakes), boot_share in zip(resamples, boot_shares)]
            low, high = np.quantile(boot, [tail, 1 - tail])
            statement.update(clean_contamination=_contamination(self.x, decoys, share, cut), clean_low=float(low),
                             clean_high=float(max(high, self.q_value[clean].max())))
        if noisy.any():  # against random decoys, and same-scene ones when there are: the lower, at each share
            cut = self.x[noisy].min()
            kinds = [(self.decoys, (self.share, *self.share_interval))] + (
                [(self.scene[0], (self.scene[1], *self.scene[2]))] if self.scene is not None else [])
            statement.update({name: min(_precision(self.x, decoys, shares[at], cut, int(noisy.sum()))
                                        for decoys, shares in kinds)
                              for at, name in enumerate(("noisy_precision", "noisy_low", "noisy_high"))})
        return statement


def decoy_calibration(x: np.ndarray, decoys: np.ndarray, groups: np.ndarray, decoy_groups: np.ndarray, *,
                      scene_decoys: np.ndarray | None = None, scene_groups: np.ndarray | None = None,
                      noisy_from: float = 0.95, max_contamination: float = MAX_CONTAMINATION, level: float = 0.9,
                      bootstraps: int = BOOTSTRAPS, seed: int = 0) -> DecoyCalibration:
    """Noise share, per-pair noisy probability and q-value, and labels with a stated error rate.

    Parameters
    ----------
    x
        Noise scores of the pairs (higher = noisier).
    decoys
        The same detector's noise scores of decoys (pairs mismatched by construction).
    groups, decoy_groups
        The image of each pair and of each decoy: the bootstrap resamples images.
    scene_decoys, scene_groups
        Same-scene decoys (a caption of another image of the pair's category) and their images, when the
        data has categories: the clean set is then cut against them, and their share is stated too.
    noisy_from
        The noisy set is the largest one, highest noise scores first, whose estimated precision is at least this.
    max_contamination
        The clean set is the largest one, lowest noise scores first, whose estimated share of noisy
        pairs is at most this.
    level
        Coverage of the intervals.
    bootstraps, seed
        Resamples of images, and their seed.

    Returns
    -------
    DecoyCalibration
    """
    x, decoys = np.asarray(x, dtype=float), np.asarray(decoys, dtype=float)
    if len(x) < 2 or len(decoys) < 2:
        raise NctoolError(f"decoy calibration: {len(x)} scored pair(s) and {len(decoys)} decoy(s); it needs at "
                          f"least 2 of each")
    if not 0 < max_contamination < 1:
        raise NctoolError(f"max contamination {max_contamination:g}: outside (0, 1); give the share of noisy "
                          f"pairs a clean set may hold, e.g. 0.05")
    usable = len(decoys) * (1 - LAMBDAS) >= MIN_DECOYS_ABOVE
    if not usable.any():
        unknown = np.full(len(x), np.nan)
        return DecoyCalibration(None, None, None, unknown, unknown, np.full(len(x), "ambiguous"), level, x, decoys, [],
                                np.empty(0))
    resamples = _image_resamples(np.asarray(groups), np.asarray(decoy_groups), bootstraps, seed)
    share, share_interval, cut, boot_shares = _storey_share(x, decoys, resamples, usable, level)
    scene = None
    if scene_decoys is not None and len(scene_decoys) * (1 - LAMBDAS[0]) >= MIN_DECOYS_ABOVE:
        scene_decoys = np.asarray(scene_decoys, dtype=float)
        scene_resamples = _image_resamples(np.asarray(groups), np.asarray(scene_groups), bootstraps, seed)
        found = _storey_share(x, scene_decoys, scene_resamples, len(scene_decoys) * (1 - LAMBDAS) >= MIN_DECOYS_ABOVE,
                              level)
        scene = (scene_decoys, found[0], found[1], scene_resamples, found[3])
    probability = noisy_probability(x, decoys, share)
    # the clean set holds even at the top of the share's interval, and against same-scene decoys when there are
    q = (clean_q_values(x, decoys, share_interval[1], level=level) if scene is None else
         clean_q_values(x, scene[0], scene[2][1], level=level))
    precision = noisy_precisions(x, decoys, share, *([] if scene is None else [scene[:2]]))  # against both kinds
    labels = np.where(precision >= noisy_from, "noisy", np.where(q <= max_contamination, "clean", "ambiguous"))
    if share_interval[1] - share_interval[0] > MAX_SHARE_WIDTH:  # the share is not pinned: no set is stated
        labels = np.full(len(x), "ambiguous")
    return DecoyCalibration(share, share_interval, cut, probability, q, labels, level, x, decoys, resamples,
                            boot_shares, scene)


def _storey_share(x: np.ndarray, decoys: np.ndarray, resamples: list, usable: np.ndarray,
                  level: float) -> tuple[float, tuple[float, float], float, np.ndarray]:
    """(share, its interval, the cut lambda, each resample's share at that cut): Storey's bootstrap rule over
    the usable cuts of LAMBDAS; each resample makes its own choice for the interval (module docstring)."""
    grid = np.array([_tail_shares(x[pairs], decoys[fakes])[usable] for pairs, fakes in resamples])  # [B, lambdas]
    shares = _tail_shares(x, decoys)[usable]
    chosen = int(np.argmin(((grid - shares.min()) ** 2).mean(0)))
    tail = (1 - level) / 2
    each = [int(np.argmin(((grid - least) ** 2).mean(0))) for least in grid.min(1)]  # each resample's own choice
    interval = tuple(float(v) for v in np.clip(np.quantile(grid[np.arange(len(grid)), each], [tail, 1 - tail]), 0, 1))
    return float(min(1.0, shares[chosen])), interval, float(LAMBDAS[usable][chosen]), grid[:, chosen]


def _contamination(x: np.ndarray, decoys: np.ndarray, share: float, cut: float) -> float:
    """The estimated share of noisy pairs among {x <= cut}: the decoys below it, plus one (knockoff+: a handful of
    pairs below every decoy is not clean for sure), stand for the noisy pairs (clean_q_values bounds the same)."""
    return float(min(1.0, share * len(x) * ((decoys <= cut).sum() + 1) / len(decoys) / max(1, (x <= cut).sum())))


def _precision(x: np.ndarray, decoys: np.ndarray, share: float, cut: float, flagged: int) -> float:
    """The estimated share of noisy pairs among the `flagged` pairs of a noisy set whose least noise score is
    `cut` (noisy_precisions' estimate at one cut: the noisy pairs at or above it, share * N * P_decoy(x >= cut))."""
    return float(min(1.0, share * len(x) * (decoys >= cut).mean() / flagged))


def noisy_precisions(x: np.ndarray, decoys: np.ndarray, share: float,
                     *more: tuple[np.ndarray, float]) -> np.ndarray:
    """Per pair, the best estimated precision of a noisy set {x >= t} that holds it (module docstring). With
    `more` kinds of decoys, (decoys, share) each, a set's precision is the lowest of its estimates."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    above = len(x) - np.searchsorted(np.sort(x), x[order], side="left")         # pairs at or above each score
    precision = np.ones(len(x))
    for kind, kind_share in ((decoys, share), *more):
        kind_above = (len(kind) - np.searchsorted(np.sort(kind), x[order], side="left")) / len(kind)
        precision = np.minimum(precision, kind_share * len(x) * kind_above / above)
    best = np.maximum.accumulate(precision)                                       # the best over every larger set
    out = np.empty(len(x))
    out[order] = best
    return out


def noisy_probability(x: np.ndarray, decoys: np.ndarray, share: float) -> np.ndarray:
    """share * f_decoy(x) / f(x) per pair, from an isotonic fit of "is a decoy" on the score (module docstring)."""
    x, decoys = np.asarray(x, dtype=float), np.asarray(decoys, dtype=float)
    fit = IsotonicRegression(increasing=True, y_min=0.0, y_max=1.0, out_of_bounds="clip")
    fit.fit(np.concatenate([x, decoys]), np.concatenate([np.zeros(len(x)), np.ones(len(decoys))]))
    p = fit.predict(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(p < 1, len(x) / len(decoys) * p / (1 - p), np.inf)
    return np.clip(share * ratio, 0.0, 1.0)


def clean_q_values(x: np.ndarray, decoys: np.ndarray, share: float, *, level: float = 0.9) -> np.ndarray:
    """Per pair, the least bound on the contamination of a clean set {x <= t} that holds it, the decoys' count
    below t taken at the top of its Poisson interval at `level` (module docstring)."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    below = np.searchsorted(np.sort(x), x[order], side="right")        # pairs at or below each score (ties share)
    counted = np.searchsorted(np.sort(decoys), x[order], side="right")
    decoys_below = chi2.ppf((1 + level) / 2, 2 * (counted + 1)) / 2 / len(decoys)  # Garwood's upper end
    contamination = np.minimum(1.0, share * len(x) * decoys_below / below)
    q = np.minimum.accumulate(contamination[::-1])[::-1]              # the least over every larger set
    out = np.empty(len(x))
    out[order] = q
    return out


def _tail_shares(x: np.ndarray, decoys: np.ndarray) -> np.ndarray:
    """decoy_share's ratio P(x > cut) / P(decoy > cut) at each cut of LAMBDAS (decoy quantiles)."""
    cuts = np.quantile(decoys, LAMBDAS)
    above = len(x) - np.searchsorted(np.sort(x), cuts, side="right")
    decoys_above = len(decoys) - np.searchsorted(np.sort(decoys), cuts, side="right")
    return (above / len(x)) / np.maximum(decoys_above, 1) * len(decoys)


def _image_resamples(groups: np.ndarray, decoy_groups: np.ndarray, bootstraps: int,
                     seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`bootstraps` resamples of the images: (pair indices, decoy indices), each image's pairs and decoys
    together (a decoy's image is one of the pairs' images)."""
    images, pair_image = np.unique(groups, return_inverse=True)
    decoy_image = np.searchsorted(images, decoy_groups)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(bootstraps):
        times = np.bincount(rng.integers(0, len(images), len(images)), minlength=len(images))  # draws of each image
        out.append((np.repeat(np.arange(len(groups)), times[pair_image]),
                    np.repeat(np.arange(len(decoy_groups)), times[decoy_image])))
    return out
