"""The detector interface: `Evidence`, `Option`, `Detector`, the registry (`register`, `DETECTORS`,
`detector_names`, `detector_options`, `make_detectors`) and what several detectors share.

`nctool.detect.score` embeds every scored pair once with one trained model and hands the same
`Evidence` to each detector. A detector returns one row per pair: `pair_id`, `reliability` in
[0, 1] (1 = surely matched), `label` (clean / ambiguous / noisy), `detector` (its name) and its own
evidence columns. Ranking pairs by reliability is each detector's noise ranking (noise score =
1 - reliability), so AUROC and AUPRC read straight off it. Labels are calibrated on the data at hand
(`_CalibratedDetector`: against decoys where the detector scores them, else a two-component mixture on
its noise score), and each frame carries its statement of the noise share in `frame.attrs["noise_share"]`.

A detector is one class: a `Detector` subclass decorated with `@register`, carrying its `name`, a
one-line `description`, the evidence it `needs` and its `options` (each an `Option`: keyword, type,
default, help). Everything else derives from the registry `DETECTORS`: `make_detectors`, the
choices and flags of `nctool score` (an option becomes `--name-with-dashes`; detectors that declare
the same option share the flag), and the detector list of `nctool bench` (`detector_names()`).

The detectors themselves are one module each in this package (listed in its __init__); this module
imports none of them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

import numpy as np
import pandas as pd

from nctool.errors import NctoolError
from nctool.schema import LABELS

if TYPE_CHECKING:
    import torch

    from nctool.data.words import ImageWords

# torch, scipy and sklearn (nctool.model.losses, nctool.detect.calibration) are imported where they are used:
# the CLI reads this registry to build `nctool score --help`, which should not wait for them.

_LABELS = np.asarray(LABELS)  # indexed by losses' split codes
CHUNK_ELEMENTS = 2**24  # similarity entries the neighbour search holds at a time
EVIDENCE_KINDS = frozenset({"loss", "embeddings", "captions", "tags"})


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
    decoy_similarity: np.ndarray | None = None  # [N] the same for the pair's decoy: its image, another image's caption
    decoy_loss: np.ndarray | None = None        # [N] (nctool.detect.measure.ReferencePool.decoys)
    decoy_caption: np.ndarray | None = None     # [N] int: the row whose caption the pair's decoy holds
    scene_decoy_similarity: np.ndarray | None = None  # [N] the same for a same-scene decoy (a caption of another
    scene_decoy_loss: np.ndarray | None = None        # image of the pair's `category`): the decoys of hard noise;
    scene_decoy_caption: np.ndarray | None = None     # NaN / -1 where there is none, None without `category`
    image_global: torch.Tensor | None = None  # [N, D] L2-normalised, the pair's image (neighbors; any device)
    text_global: torch.Tensor | None = None   # [N, D] L2-normalised, the pair's caption (neighbors)
    seed: int = 0                        # the run's seed, for detectors that draw at random
    caption: np.ndarray | None = None    # [N] str, the pair's caption (detectors that need "captions")
    image_words: ImageWords | None = None  # a word tagger's reading of the pair's image ("tags")


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
    "embeddings" = image_global, text_global; "captions" = caption; "tags" = image_words, read by the
    word tagger named by the `tagger` option; scoring computes only what the chosen detectors
    need; an instance may add to its class's needs from its options) and `options`. The constructor
    takes the options as keywords (missing ones get their default) and sets each as an attribute;
    `check()` refuses bad values.
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
        """The detector's rows; `share` (its noise-share statement), when it has one, goes to attrs["noise_share"]."""
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


NOISY_FROM = Option("noisy_from", float, 0.95, "labels: the noisy set is the largest one whose estimated precision "
                                             "(share of true mismatches) is at least this")
MAX_CONTAMINATION = Option("max_contamination", float, 0.05, "labels: the clean set is the largest one whose "
                                                             "estimated share of noisy pairs is at most this")
SCENE_DECOYS = Option("scene_decoys", bool, True, "labels: when the data has a `category` column, cut the clean and "
                                                  "noisy sets against same-scene decoys too (a caption of another "
                                                  "image of the pair's category), so that hard noise cannot hide in "
                                                  "the clean set nor inflate the noisy set's precision")


class _CalibratedDetector(Detector):
    """A detector whose labels are calibrated on the data at hand (`_calibrated`).

    With the decoys' noise scores, the target-decoy statement of
    nctool.detect.calibration.decoy_calibration: a noise share with its interval, per pair a
    `noisy_probability` and a `q_value`, noisy from `noisy_from`, clean up to `max_contamination`.
    A detector that cannot score decoys in the data's context falls back to the mixture of
    calibration.fit_mixture (noisy posterior >= noisy_from, clean below 0.5), whose share is stated
    as a mixture estimate, and its `noisy_probability` / `q_value` are NaN.
    """

    noisy_from: float
    max_contamination: float
    scene_decoys: bool

    def check(self) -> None:
        from nctool.detect.calibration import CLEAN_BELOW

        if not CLEAN_BELOW <= self.noisy_from <= 1:
            raise NctoolError(f"noisy from {self.noisy_from:g}: outside [{CLEAN_BELOW:g}, 1]; give the noise "
                              f"precision the noisy set must reach, e.g. 0.95")
        if not 0 < self.max_contamination < 1:
            raise NctoolError(f"max contamination {self.max_contamination:g}: outside (0, 1); give the share of "
                              f"noisy pairs a clean set may hold, e.g. 0.05")

    def _scene_decoy_noise(self, evidence: Evidence,
                           decoy_noise: Callable[[Evidence], np.ndarray]) -> np.ndarray | None:
        """The noise scores of the pairs' same-scene decoys (NaN where a pair has none): `decoy_noise`, the
        detector's noise score of the decoys in `evidence`, on the evidence with the same-scene decoys in place
        of the random ones. None when `scene_decoys` is off or the data has no `category`."""
        if not self.scene_decoys or evidence.scene_decoy_caption is None:
            return None
        found = evidence.scene_decoy_caption >= 0
        swapped = dataclasses.replace(evidence, decoy_similarity=evidence.scene_decoy_similarity,
                                      decoy_loss=evidence.scene_decoy_loss,
                                      decoy_caption=np.where(found, evidence.scene_decoy_caption, 0))
        with np.errstate(invalid="ignore"):  # a pair without a same-scene decoy may score NaN; it is dropped here
            return np.where(found, decoy_noise(swapped), np.nan)

    def _calibrated(self, noise: np.ndarray, decoys: np.ndarray | None, evidence: Evidence,
                    scene: np.ndarray | None = None) -> tuple[np.ndarray, Callable[[np.ndarray], dict], dict]:
        """(labels, `state(labels)`: the statement for the final labels, the columns noisy_probability and
        q_value) for the pairs' noise scores and the decoys' (on the same scale; None when there are none),
        and the same-scene decoys' (NaN where a pair has none; None without `category`). A fixed rule
        that replaces the labels is stated for its own sets (cuts on the same scores)."""
        from nctool.detect.calibration import calibrated_labels, decoy_calibration, fit_mixture, noise_share

        if decoys is None:
            mixture = fit_mixture(noise, seed=evidence.seed)
            labels = calibrated_labels(mixture.noisy_posterior(noise), noisy_from=self.noisy_from)
            unknown = np.full(len(noise), np.nan)
            share = noise_share(mixture, noise)
            return labels, lambda _: share, {"noisy_probability": unknown, "q_value": unknown}
        found = None if scene is None else ~np.isnan(scene)
        stated = decoy_calibration(noise, decoys, evidence.image_id, evidence.image_id,
                                   scene_decoys=None if scene is None else scene[found],
                                   scene_groups=None if scene is None else evidence.image_id[found],
                                   noisy_from=self.noisy_from, max_contamination=self.max_contamination,
                                   seed=evidence.seed)
        return (stated.labels, lambda labels: {**stated.summary(labels), "max_contamination": self.max_contamination},
                {"noisy_probability": stated.noisy_probability, "q_value": stated.q_value})


class _CosineScoreDetector(_CalibratedDetector):
    """A detector whose score s is on the cosine scale [-1, 1]: reliability = (s + 1) / 2.

    Labels: `_CalibratedDetector` on the noise score -s (against the decoys' -s when the evidence has
    decoys, else the mixture). Fixed rules instead, clean / noisy only: with `threshold`, clean when s >= threshold
    (LAION kept CLIP B/32 cosines >= 0.28-0.30); with `keep_fraction`, the pairs with the highest s
    are clean (DataComp's "top 30 %" style; ties broken by pair_id; nctool's default before
    calibration was 0.6).
    """

    options = (NOISY_FROM, MAX_CONTAMINATION, SCENE_DECOYS,
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

    def score(self, evidence: Evidence) -> tuple[np.ndarray, dict, np.ndarray | None]:
        """(s [N], evidence columns, s of the pairs' decoys [N] scored in the data's context, or None when
        the evidence has no decoys)."""
        raise NotImplementedError

    def detect(self, evidence: Evidence) -> pd.DataFrame:
        score, columns, decoys = self.score(evidence)
        scene = self._scene_decoy_noise(evidence, lambda swapped: -self.score(swapped)[2])
        labels, state, stated = self._calibrated(-score, None if decoys is None else -decoys, evidence, scene)
        columns = {**columns, **stated}
        if self.threshold is not None:
            labels = np.where(score >= self.threshold, "clean", "noisy")
        elif self.keep_fraction is not None:
            clean = np.zeros(len(score), dtype=bool)
            clean[np.lexsort((evidence.pair_id, -score))[:round(self.keep_fraction * len(score))]] = True
            labels = np.where(clean, "clean", "noisy")
        return self._frame(evidence, (np.clip(score, -1, 1) + 1) / 2, labels, state(labels), **columns)


def _standardized(values: np.ndarray, by: np.ndarray | None = None) -> np.ndarray:
    """(values - mean) / std, the mean and std of `by` (default: of the values themselves); all zero when
    `by` does not vary."""
    by = values if by is None else by
    spread = by.std() if len(by) else 0.0
    return (values - by.mean()) / spread if spread > 0 else np.zeros_like(values)
