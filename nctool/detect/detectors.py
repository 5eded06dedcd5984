"""Noisy-correspondence detectors, registered by name (in the style of cleanlab's issue managers).

`nctool.detect.score` embeds every scored pair once with one trained model and hands the same
`Evidence` to each detector. A detector returns one row per pair: `pair_id`, `reliability` in
[0, 1] (1 = surely matched), `label` (clean / ambiguous / noisy), `detector` (its name) and its own
evidence columns. Ranking pairs by reliability is each detector's noise ranking (noise score =
1 - reliability), so AUROC and AUPRC read straight off it. Labels are calibrated on the data at hand
(nctool.detect.calibration: a two-component mixture on the detector's noise score), and each frame carries
that mixture's estimate of the noise share in `frame.attrs["noise_share"]` (calibration.noise_share).

A detector is one class: a `Detector` subclass decorated with `@register`, carrying its `name`, a
one-line `description`, the evidence it `needs` and its `options` (each an `Option`: keyword, type,
default, help). Everything else derives from the registry `DETECTORS`: `make_detectors`, the
choices and flags of `nctool score` (an option becomes `--name-with-dashes`; detectors that declare
the same option share the flag), and the detector list of `nctool bench` (`detector_names()`).

Registered here (formulas in each class):
- `rrsitr`:     the RRSITR per-pair loss over fixed reference batches, labelled by a mixture fitted to it;
- `similarity`: cosine of image and caption (the CLIP-score filter of LAION / DataComp);
- `loss-gmm`:   two-component Gaussian mixture on the same loss (the NCR family's split);
- `neighbors`:  training-free agreement of each pair with its nearest neighbours (LEMoN-like).
- `siblings`:   agreement of each caption with the other captions of its image, by their reliability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

import numpy as np
import pandas as pd

from nctool.errors import NctoolError
from nctool.schema import LABELS

if TYPE_CHECKING:
    import torch

# torch, scipy and sklearn (nctool.model.losses, nctool.detect.calibration) are imported where they are used:
# the CLI reads this registry to build `nctool score --help`, which should not wait for them.

_LABELS = np.asarray(LABELS)  # indexed by losses' split codes
CHUNK_ELEMENTS = 2**24  # similarity entries the neighbour search holds at a time
NEIGHBOR_INDEXES = ("exact", "faiss")  # the neighbour search of `neighbors` (NeighborsDetector)
FLAT_UP_TO = 50_000       # keys; a larger faiss index is approximate (IVF)
IVF_PROBE_SHARE = 1 / 16  # of the IVF lists searched per query
EVIDENCE_KINDS = frozenset({"loss", "embeddings"})


@dataclass
class Evidence:
    """What scoring computes once per scored pair; every array has one entry per pair, same order.

    `nctool.detect.score` hands the pairs sorted by `pair_id`, so detectors that break ties by position
    still give the same answer whatever the order of the input file.
    """

    pair_id: np.ndarray                  # [N] str
    image_id: np.ndarray                 # [N] str
    similarity: np.ndarray               # [N] cosine of the pair's global image and caption embeddings
    loss: np.ndarray | None = None       # [N] RRSITR per-pair loss, mean over the reference batches
    loss_std: np.ndarray | None = None   # [N] its standard deviation over those batches
    loss_thresholds: tuple[float, float] | None = None  # (g1, g2) for the reference batch size
    image_global: torch.Tensor | None = None  # [N, D] L2-normalised, the pair's image (neighbors; any device)
    text_global: torch.Tensor | None = None   # [N, D] L2-normalised, the pair's caption (neighbors)
    seed: int = 0                        # the run's seed, for detectors that draw at random


@dataclass(frozen=True)
class Option:
    """A setting a detector declares: keyword `name` (CLI flag `--name-with-dashes`), type, default, help.

    `type` is int, float, str or bool; a `default` of None makes the option optional (unset).
    """

    name: str
    type: type
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


class Detector:
    """Base of every detector: `detect(evidence)` -> one row per pair, in evidence order (`_frame`; see
    the module docstring).

    Class attributes: `name` (registry key, also the `detector` column), `description` (one line),
    `needs` (the evidence beyond `similarity` it reads: "loss" = loss, loss_std, loss_thresholds;
    "embeddings" = image_global, text_global; scoring computes only what the chosen detectors
    need) and `options`. The constructor takes the options as keywords (missing ones get their
    default) and sets each as an attribute; `check()` refuses bad values.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    options: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, **values: Any):
        declared = [option.name for option in self.options]
        unknown = [name for name in values if name not in declared]
        if unknown:
            raise NctoolError(f"{self.name}: no option '{unknown[0]}'; its options are "
                              f"{', '.join(declared) or 'none'}")
        for option in self.options:
            setattr(self, option.name, values.get(option.name, option.default))
        self.check()

    def check(self) -> None:
        """Raise NctoolError for an option value the detector cannot work with."""

    def detect(self, evidence: Evidence) -> pd.DataFrame:
        raise NotImplementedError

    def _frame(self, evidence: Evidence, reliability: np.ndarray, labels: np.ndarray, share: dict | None = None,
               **columns) -> pd.DataFrame:
        """The detector's rows; `share` (calibration.noise_share), when it has one, goes to attrs["noise_share"]."""
        frame = pd.DataFrame({"pair_id": evidence.pair_id, "reliability": np.asarray(reliability, dtype=float),
                              "label": labels, "detector": self.name,
                              **{name: np.asarray(values, dtype=float) for name, values in columns.items()}})
        if share is not None:
            frame.attrs["noise_share"] = share
        return frame


DETECTORS: dict[str, type[Detector]] = {}
"""The registry: detector name -> class, in registration order (`@register`)."""


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: add a Detector subclass to DETECTORS under its `name`.

    Refuses (TypeError, a programming error) a missing name or description, a taken name, unknown
    `needs`, and an option that another detector declares with another type or default (detectors
    share a CLI flag per option name, so they must agree on it).
    """
    if not (cls.name and cls.description) or "\n" in cls.description:
        raise TypeError(f"{cls.__name__}: a detector needs a name and a one-line description")
    if cls.name in DETECTORS or cls.name == "all":
        raise TypeError(f"{cls.__name__}: detector name '{cls.name}' is taken")
    if not cls.needs <= EVIDENCE_KINDS:
        raise TypeError(f"{cls.__name__}: needs {sorted(cls.needs - EVIDENCE_KINDS)}; known: {sorted(EVIDENCE_KINDS)}")
    for option in cls.options:
        known = detector_options().get(option.name)
        if known and (known[0].type, known[0].default) != (option.type, option.default):
            raise TypeError(f"{cls.__name__}: option '{option.name}' differs from {', '.join(known[1])}'s")
    DETECTORS[cls.name] = cls
    return cls


def detector_names() -> tuple[str, ...]:
    """Every registered detector name, in registration order."""
    return tuple(DETECTORS)


def detector_options() -> dict[str, tuple[Option, tuple[str, ...]]]:
    """Every option any detector declares: name -> (the Option, names of the detectors that declare it)."""
    found: dict[str, tuple[Option, tuple[str, ...]]] = {}
    for name, cls in DETECTORS.items():
        for option in cls.options:
            first, users = found.get(option.name, (option, ()))
            found[option.name] = (first, (*users, name))
    return found


def make_detectors(names: Sequence[str], options: Mapping[str, Any] | None = None) -> list[Detector]:
    """Detectors by name ("all" = every registered one), in the order given, each once.

    `options` maps option names to values; each detector takes the ones it declares. A name no
    registered detector declares is refused.
    """
    options = dict(options or {})
    expanded = list(dict.fromkeys(n for name in names for n in (DETECTORS if name == "all" else [name])))
    unknown = [name for name in expanded if name not in DETECTORS]
    if unknown or not expanded:
        raise NctoolError(f"detector '{unknown[0] if unknown else ''}': unknown; choose from "
                          f"{', '.join(DETECTORS)} or all")
    declared = detector_options()
    stray = [name for name in options if name not in declared]
    if stray:
        raise NctoolError(f"detector option '{stray[0]}': unknown; detectors take {', '.join(declared)}")
    return [DETECTORS[name](**{option.name: options[option.name] for option in DETECTORS[name].options
                               if option.name in options}) for name in expanded]


def loss_reliability(loss: np.ndarray, g2: float, tail: float = 0.05) -> np.ndarray:
    """Strictly decreasing map of a per-pair loss (>= 0) onto (0, 1], with value 1 at loss 0.

        r(l) = (1 - tail) * v(l) + tail * exp(-l / g2),   v(l) = cos(pi*l / (2*g2)) for l < g2, else 0

    v is RRSITR's self-paced weight of the ambiguous bin (losses.self_paced_weight with g2), used
    across the whole range because the clean-bin weight jumps at g1; the small exponential tail keeps
    the map strictly decreasing past g2, where v is 0. Computed in float64 so that ranking pairs by
    reliability is ranking them by loss.
    """
    loss = np.asarray(loss, dtype=float)
    weight = np.where(loss < g2, np.cos(loss * (math.pi / (2 * g2))), 0.0)
    return (1 - tail) * weight + tail * np.exp(-loss / g2)


NOISY_FROM = Option("noisy_from", float, 0.9, "calibrated labels: noisy when the mixture's noise posterior is "
                                            "at least this (clean below 0.5, ambiguous between)")


class _CalibratedDetector(Detector):
    """A detector whose labels can be calibrated: `noisy_from` checked, `_calibrated` labels a noise score."""

    noisy_from: float

    def check(self) -> None:
        from nctool.detect.calibration import CLEAN_BELOW

        if not CLEAN_BELOW <= self.noisy_from <= 1:
            raise NctoolError(f"noisy from {self.noisy_from:g}: outside [{CLEAN_BELOW:g}, 1]; give the noise "
                              f"posterior from which a pair is labelled noisy, e.g. 0.9")

    def _calibrated(self, noise: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
        """(calibrated labels, noise share) from a mixture fitted to the noise scores (higher = noisier)."""
        from nctool.detect.calibration import calibrated_labels, fit_mixture, noise_share

        mixture = fit_mixture(noise, seed=seed)
        labels = calibrated_labels(mixture.noisy_posterior(noise), noisy_from=self.noisy_from)
        return labels, noise_share(mixture, noise)


@register
class RRSITRDetector(_CalibratedDetector):
    """RRSITR's per-pair loss of a trained model, labelled by a mixture fitted to it.

    The loss is the one the method trains with (losses.per_pair_loss on nctool.model.objectives' logits,
    four cross-entropy terms or two without local features), computed by scoring over fixed
    reference batches so that it does not depend on the order of the file. Reliability:
    `loss_reliability` (RRSITR's self-paced weight at g2), strictly decreasing in the loss.
    Labels (nctool.detect.calibration): a tied two-component Gaussian mixture on log(1 + loss), fitted to
    the scored pairs; noisy when its noise posterior is at least `noisy_from` (0.9), clean below
    0.5, ambiguous between. The labels are cuts on the loss, so they follow the reliability ranking.
    The paper's g1/g2 split the loss for training (a batch at chance loss is all noisy, and the
    clean bin is what the self-paced weight trusts), not for a curator: on a trained model they put
    most pairs in between. `training_split` gives that split back: clean l < g1, ambiguous
    g1 <= l < g2, noisy l >= g2 (losses.split_by_loss), with (g1, g2) the checkpoint's thresholds
    scaled to the reference batch size (losses.recipe_thresholds); reliability is then above r(g1)
    exactly for the clean pairs and at most r(g2) exactly for the noisy ones.
    Evidence: `loss`, `loss_std`.
    """

    name = "rrsitr"
    description = "RRSITR's per-pair loss over fixed reference batches, labelled by a mixture fitted to it"
    needs = frozenset({"loss"})
    options = (NOISY_FROM, Option("training_split", bool, False, "label by the recipe's training thresholds "
                                                                 "g1/g2 instead of the calibrated mixture"))
    training_split: bool

    def detect(self, evidence: Evidence) -> pd.DataFrame:
        import torch

        from nctool.model.losses import split_by_loss

        g1, g2 = evidence.loss_thresholds
        labels, share = self._calibrated(np.log1p(evidence.loss), evidence.seed)
        if self.training_split:
            loss = torch.from_numpy(np.asarray(evidence.loss, dtype=float))
            labels = _LABELS[split_by_loss(loss, g1, g2).numpy()]
        return self._frame(evidence, loss_reliability(evidence.loss, g2), labels, share,
                           loss=evidence.loss, loss_std=evidence.loss_std)


class _CosineScoreDetector(_CalibratedDetector):
    """A detector whose score s is on the cosine scale [-1, 1]: reliability = (s + 1) / 2.

    Labels (nctool.detect.calibration): a tied two-component Gaussian mixture on -s, fitted to the scored
    pairs; noisy when its noise posterior is at least `noisy_from` (0.9), clean below 0.5, ambiguous
    between. Fixed rules instead, clean / noisy only: with `threshold`, clean when s >= threshold
    (LAION kept CLIP B/32 cosines >= 0.28-0.30); with `keep_fraction`, the pairs with the highest s
    are clean (DataComp's "top 30 %" style; ties broken by pair_id; nctool's default before
    calibration was 0.6).
    """

    options = (NOISY_FROM,
               Option("keep_fraction", float, None, "label this share of pairs clean, the rest noisy, instead of "
                                                    "the calibrated labels"),
               Option("threshold", float, None, "label clean when the cosine score is at least this "
                                                "(e.g. 0.28), noisy below, instead of the calibrated labels"))
    keep_fraction: float | None
    threshold: float | None

    def check(self) -> None:
        super().check()
        if self.keep_fraction is not None and not 0 < self.keep_fraction <= 1:
            raise NctoolError(f"keep fraction {self.keep_fraction:g}: outside (0, 1]; "
                              f"give the share of pairs to label clean")
        if self.threshold is not None and not -1 <= self.threshold <= 1:
            raise NctoolError(f"threshold {self.threshold:g}: outside [-1, 1]; it is a cosine similarity, e.g. 0.28")

    def score(self, evidence: Evidence) -> tuple[np.ndarray, dict]:
        """(s [N], evidence columns)."""
        raise NotImplementedError

    def detect(self, evidence: Evidence) -> pd.DataFrame:
        score, columns = self.score(evidence)
        labels, share = self._calibrated(-score, evidence.seed)
        if self.threshold is not None:
            labels = np.where(score >= self.threshold, "clean", "noisy")
        elif self.keep_fraction is not None:
            clean = np.zeros(len(score), dtype=bool)
            clean[np.lexsort((evidence.pair_id, -score))[:round(self.keep_fraction * len(score))]] = True
            labels = np.where(clean, "clean", "noisy")
        return self._frame(evidence, (np.clip(score, -1, 1) + 1) / 2, labels, share, **columns)


@register
class SimilarityDetector(_CosineScoreDetector):
    """s = cosine of the pair's global image and caption embeddings. Evidence: `similarity`."""

    name = "similarity"
    description = "cosine of image and caption embeddings (the CLIP-score filter of LAION / DataComp)"

    def score(self, evidence: Evidence) -> tuple[np.ndarray, dict]:
        return evidence.similarity, {"similarity": evidence.similarity}


@register
class LossGMMDetector(Detector):
    """Two-component Gaussian mixture on z = log(1 + loss) (the NCR family's clean/noisy split).

    Reliability is the posterior of the lower-mean ("clean") component (calibration.fit_mixture,
    the same mixture the calibrated labels of `rrsitr` use). The components share one
    variance ("tied"), so the posterior log-odds are linear in z,

        log p/(1-p) = log(w_c/w_n) + (m_c - m_n) * (2z - m_c - m_n) / (2 s^2),   m_c < m_n,

    and reliability is strictly decreasing in the loss by construction (down to float64 saturation
    at 0 and 1). With a variance per component the posterior bends back at the extremes, and on the
    raw loss the broad high-loss component stops it rising (docs/method.md): both change the ranking.
    log(1 + l) is log-loss for the losses that matter and stays finite at l = 0.
    Labels: clean p >= clean_from (0.75), noisy p < noisy_below (0.25), ambiguous between: a pair
    gets a side only when the mixture favours it 3:1, around NCR's p = 0.5. The mixture's
    initialisation draws from the run's seed (Evidence.seed). Evidence: `loss`.
    """

    name = "loss-gmm"
    description = "two-component Gaussian mixture on log(1 + loss) (the NCR family's clean/noisy split)"
    needs = frozenset({"loss"})
    options = (Option("clean_from", float, 0.75, "label clean when the clean posterior is at least this"),
               Option("noisy_below", float, 0.25, "label noisy when the clean posterior is below this"))
    clean_from: float
    noisy_below: float

    def check(self) -> None:
        if not 0 <= self.noisy_below <= self.clean_from <= 1:
            raise NctoolError(f"loss-gmm: noisy below {self.noisy_below:g}, clean from {self.clean_from:g}: "
                              f"need 0 <= noisy-below <= clean-from <= 1")

    def detect(self, evidence: Evidence) -> pd.DataFrame:
        from scipy.special import expit

        from nctool.model import losses
        from nctool.detect.calibration import fit_mixture, noise_share

        z = np.log1p(np.asarray(evidence.loss, dtype=float))
        mixture = fit_mixture(z, seed=evidence.seed)
        p_clean = expit(mixture.clean_log_odds(z))
        codes = np.where(p_clean >= self.clean_from, losses.CLEAN,
                         np.where(p_clean < self.noisy_below, losses.NOISY, losses.AMBIGUOUS))
        return self._frame(evidence, p_clean, _LABELS[codes], noise_share(mixture, z), loss=evidence.loss)


@register
class NeighborsDetector(_CosineScoreDetector):
    """Training-free consensus of a pair (x_i, t_i) with its neighbours (in the spirit of LEMoN).

        c_i = x_i . t_i                                  the direct cosine
        a_i = mean over the k images u nearest to x_i of  mean caption of u . t_i
              (do the captions of look-alike images say what t_i says?)
        b_i = mean over the k captions t_j nearest to t_i of  x_j . x_i
              (do the images of look-alike captions look like x_i?)
        s_i = mean(c) + std(c) * (z(c)_i + z(a)_i + z(b)_i) / 3

    k is the `neighbors` option. z standardises a term over the scored pairs (mean 0, std 1): the
    three cosines live on very different scales (caption-caption and image-image cosines are high
    and, for a weak model, widely spread), so a plain average lets the widest one decide. s puts the
    equal-weight vote back on the direct cosine's scale, so `threshold` reads as a cosine. No weight
    is tuned on labels. Neighbours never share the pair's image_id, so a pair's own image and
    sibling captions do not vote. Images are searched once per image_id (the mean caption of an
    image averages its rows), captions per pair; k shrinks to the number of candidates when fewer
    exist. Evidence: `similarity` (c), `caption_agreement` (a), `image_agreement` (b).

    The search (`neighbor_index`), over M keys (M = images, then M = N captions) of dimension D:
    - `exact` (default): torch on the scoring device, N x M dot products in chunks of
      CHUNK_ELEMENTS similarities; holds nothing beyond the embeddings and one chunk.
    - `faiss` (`pip install 'nctool[faiss]'`, CPU): an inner-product index over the keys (the
      embeddings are L2-normalised, so inner product is cosine), searched for the k + m best
      keys (m = most keys one image holds), same-image keys dropped. Up to FLAT_UP_TO keys it is
      exact (IndexFlatIP: the same neighbours as `exact` up to float rounding of near-ties; it
      holds a copy of the keys, M x D x 4 B, e.g. 100,000 x 512 x 4 B = 205 MB). Above, an
      approximate IVF index (IVF{L},Flat, inner product): L = min(4 sqrt(M), M / 39) lists from a
      k-means seeded by the run's seed (deterministic for a given seed and data), IVF_PROBE_SHARE
      of the lists probed per query, so about that share of the dot products; it holds the keys
      (M x D x 4 B), their ids (M x 8 B) and the L x D x 4 B centroids. A query for which the
      probed lists hold fewer than k keys of other images is searched exactly.
    Both also hold the N x k neighbour ids and N x k x D gathered values of one chunk at a time.
    """

    name = "neighbors"
    description = "training-free agreement of each pair with its nearest neighbours (LEMoN-like)"
    needs = frozenset({"embeddings"})
    options = _CosineScoreDetector.options + (
        Option("neighbors", int, 10, "how many neighbours vote"),
        Option("neighbor_index", str, "exact", f"the neighbour search: {' or '.join(NEIGHBOR_INDEXES)} (faiss-cpu, "
                                               f"the faiss extra; approximate above {FLAT_UP_TO:,} keys)"))
    neighbors: int
    neighbor_index: str

    def check(self) -> None:
        super().check()
        if self.neighbors < 1:
            raise NctoolError(f"neighbors {self.neighbors}: give at least 1 neighbour")
        if self.neighbor_index not in NEIGHBOR_INDEXES:
            raise NctoolError(f"neighbor index '{self.neighbor_index}': unknown; choose {' or '.join(NEIGHBOR_INDEXES)}")
        if self.neighbor_index == "faiss":
            _import_faiss()

    def score(self, evidence: Evidence) -> tuple[np.ndarray, dict]:
        import torch

        images, texts = evidence.image_global.float(), evidence.text_global.float()
        codes, image_ids = pd.factorize(evidence.image_id)
        if len(image_ids) < 2:
            raise NctoolError("neighbors: all scored pairs share one image; the detector needs at least 2 images")
        first_rows = torch.from_numpy(np.unique(codes, return_index=True)[1]).to(images.device)
        codes = torch.from_numpy(codes).to(images.device)
        mean_caption = torch.zeros(len(image_ids), texts.shape[1], device=texts.device).index_add_(0, codes, texts)
        mean_caption /= torch.bincount(codes)[:, None]
        image_codes = torch.arange(len(image_ids), device=images.device)
        search = {"exact": _ExactSearch, "faiss": _FaissSearch}[self.neighbor_index]
        caption_agreement = _neighbour_mean(search(images[first_rows], image_codes, evidence.seed), images, codes,
                                            mean_caption, texts, self.neighbors)
        image_agreement = _neighbour_mean(search(texts, codes, evidence.seed), texts, codes, images, images,
                                          self.neighbors)
        cosine = np.asarray(evidence.similarity, dtype=float)
        votes = (_standardized(cosine) + _standardized(caption_agreement) + _standardized(image_agreement)) / 3
        score = cosine.mean() + cosine.std() * votes
        return score, {"similarity": cosine, "caption_agreement": caption_agreement,
                       "image_agreement": image_agreement}


def _standardized(values: np.ndarray) -> np.ndarray:
    """(values - mean) / std over the pairs; all zero when the values do not vary."""
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)


def _neighbour_mean(search: "_ExactSearch", queries: torch.Tensor, query_image: torch.Tensor,
                    values: torch.Tensor, targets: torch.Tensor, k: int) -> np.ndarray:
    """For each query i: mean over its k nearest keys j (largest queries_i . keys_j, among keys of
    an image other than query i's, found by `search`) of values_j . targets_i. k shrinks to the
    fewest candidates any query has."""
    import torch

    k = min(k, len(search.keys) - search.most_per_image)
    step = max(1, CHUNK_ELEMENTS // max(search.elements_per_query(k), k * queries.shape[1]))
    out = []
    for start in range(0, len(queries), step):
        rows = slice(start, start + step)
        nearest = search(queries[rows], query_image[rows], k)
        out.append((values[nearest] * targets[rows, None, :]).sum(-1).mean(1))
    return torch.cat(out).double().cpu().numpy()


class _ExactSearch:
    """The k keys with the largest inner product with each query, keys of the query's image left out.

    Exact, in torch on the keys' device (`seed` is unused: nothing is drawn).
    """

    def __init__(self, keys: torch.Tensor, key_image: torch.Tensor, seed: int = 0):
        import torch

        self.keys, self.key_image = keys, key_image
        self.most_per_image = int(torch.bincount(key_image).max())

    def elements_per_query(self, k: int) -> int:
        """Entries a search holds per query (a row of similarities)."""
        return len(self.keys)

    def __call__(self, queries: torch.Tensor, query_image: torch.Tensor, k: int) -> torch.Tensor:
        """[len(queries), k] key rows, nearest first."""
        sims = queries @ self.keys.T
        sims.masked_fill_(query_image[:, None] == self.key_image[None, :], -math.inf)
        return sims.topk(k, dim=1).indices


class _FaissSearch(_ExactSearch):
    """As _ExactSearch, through a faiss inner-product index (NeighborsDetector: which index, its memory).

    The index returns the k + most_per_image best keys, enough to leave k after dropping the
    query's own image; a query left with fewer (an IVF probe that found too few keys) is searched
    exactly.
    """

    def __init__(self, keys: torch.Tensor, key_image: torch.Tensor, seed: int = 0):
        super().__init__(keys, key_image)
        self.index = faiss_index(keys.detach().float().cpu().numpy(), seed)

    def elements_per_query(self, k: int) -> int:
        """The hits a search returns per query (faiss holds no row of similarities)."""
        return min(len(self.keys), k + self.most_per_image)

    def __call__(self, queries: torch.Tensor, query_image: torch.Tensor, k: int) -> torch.Tensor:
        import torch

        wanted = self.elements_per_query(k)
        _, hits = self.index.search(np.ascontiguousarray(queries.detach().float().cpu().numpy()), wanted)
        hits = torch.from_numpy(hits).to(queries.device)
        other = (hits >= 0) & (self.key_image[hits.clamp(min=0)] != query_image[:, None])
        # the first k hits of another image, in the index's order (nearest first)
        order = torch.sort((~other).to(torch.int8), dim=1, stable=True).indices[:, :k]
        nearest = hits.gather(1, order)
        short = other.sum(1) < k
        if short.any():
            nearest[short] = super().__call__(queries[short], query_image[short], k)
        return nearest


def faiss_index(keys: np.ndarray, seed: int = 0):
    """A faiss inner-product index holding `keys` [M, D] float32: exact (IndexFlatIP) up to FLAT_UP_TO
    rows, else IVF{L},Flat with L = min(4 sqrt(M), M / 39) lists (k-means seeded by `seed`) and
    IVF_PROBE_SHARE of them probed per query. Needs the `faiss` extra."""
    faiss = _import_faiss()
    rows, dim = keys.shape
    if rows <= FLAT_UP_TO:
        index = faiss.IndexFlatIP(dim)
    else:
        # 39 training points per list is faiss's own minimum for a sound k-means
        lists = max(1, min(round(4 * math.sqrt(rows)), rows // 39))
        index = faiss.index_factory(dim, f"IVF{lists},Flat", faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(keys)
        index.nprobe = max(1, round(lists * IVF_PROBE_SHARE))
    index.add(keys)
    return index


def _import_faiss():
    """The faiss module, or a one-line NctoolError that says how to install it."""
    try:
        import faiss
    except ImportError:
        raise NctoolError("neighbor index 'faiss': faiss is not installed; pip install 'nctool[faiss]' "
                          "(or use --neighbor-index exact)") from None
    return faiss


@register
class SiblingsDetector(_CosineScoreDetector):
    """Agreement of a caption with the other captions of its image, each weighted by its reliability.

    Remote-sensing sets carry several captions per image (5 in RSITMD/RSICD): a caption that
    disagrees with its siblings is suspect, and a sibling that is itself suspect should count less.

        c_i    = x_i . t_i                                          the direct cosine
        S(i)   = the other pairs of i's image_id                    (its sibling captions)
        a_i    = sum over j in S(i) of w_j t_j . t_i / sum over j in S(i) of w_j
        s_i    = mean(c) + std(c) * (z(c)_i + lam * z(a)_i) / (1 + lam)     when S(i) is not empty
        s_i    = c_i                                                        when it is
        w      = 1 in round 0 (plain mean); in each of the `iterations` rounds after it,
        w_j    = sigmoid(z(s)_j) with s from the round before

    lam is `sibling_weight`; z standardises over the pairs (a over those with siblings), as in
    `neighbors`, so the vote is back on the direct cosine's scale and `threshold` reads as a cosine.
    sigmoid(z(s)) is a sibling's reliability relative to the set: 0.5 for an average pair, near 1
    for a clear match, near 0 for a clear mismatch, whatever the model's cosine range. A pair
    without siblings keeps its own similarity. No weight is tuned on labels. Cost: N x D per round.
    Evidence: `similarity` (c), `sibling_agreement` (a of the last round; NaN without siblings).
    """

    name = "siblings"
    description = "agreement of each caption with the other captions of its image, weighted by their reliability"
    needs = frozenset({"embeddings"})
    options = _CosineScoreDetector.options + (
        Option("iterations", int, 3, "rounds of re-weighting each sibling caption by its reliability (0: plain mean)"),
        Option("sibling_weight", float, 1.0, "weight of the sibling agreement against the direct cosine"))
    iterations: int
    sibling_weight: float

    def check(self) -> None:
        super().check()
        if self.iterations < 0:
            raise NctoolError(f"iterations {self.iterations}: must be at least 0 (0 weighs all siblings equally)")
        if not self.sibling_weight >= 0:
            raise NctoolError(f"sibling weight {self.sibling_weight:g}: must be at least 0 (0 keeps the similarity alone)")

    def score(self, evidence: Evidence) -> tuple[np.ndarray, dict]:
        import torch
        from scipy.special import expit

        texts = evidence.text_global.double()
        codes = torch.from_numpy(pd.factorize(evidence.image_id)[0]).to(texts.device)
        cosine = np.asarray(evidence.similarity, dtype=float)
        has = (torch.bincount(codes)[codes] > 1).cpu().numpy()
        weights = torch.ones(len(cosine), dtype=texts.dtype, device=texts.device)
        for round_ in range(self.iterations + 1):
            if round_:
                weights = torch.from_numpy(expit(_standardized(score))).to(texts.device)
            agreement = np.where(has, _sibling_mean(texts, codes, weights), np.nan)
            votes = _standardized(cosine)
            votes[has] = (votes[has] + self.sibling_weight * _standardized(agreement[has])) / (1 + self.sibling_weight)
            score = np.where(has, cosine.mean() + cosine.std() * votes, cosine)
        return score, {"similarity": cosine, "sibling_agreement": agreement}


def _sibling_mean(texts: torch.Tensor, codes: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
    """For each pair i: sum over the other pairs j of its image (codes) of w_j t_j . t_i, over the sum of
    those w_j. Meaningless (0/0) for a pair alone on its image."""
    import torch

    groups = int(codes.max()) + 1
    weighted = torch.zeros(groups, texts.shape[1], dtype=texts.dtype, device=texts.device)
    weighted.index_add_(0, codes, weights[:, None] * texts)
    total = torch.zeros(groups, dtype=texts.dtype, device=texts.device).index_add_(0, codes, weights)
    own = weights * (texts * texts).sum(1)
    return (((texts * weighted[codes]).sum(1) - own) / (total[codes] - weights)).cpu().numpy()
