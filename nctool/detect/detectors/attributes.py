"""The `attributes` detector: does the caption's fine detail (counts, colours, positions, orientations)
agree with what the other captions of its image say?"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from nctool.detect.detectors.base import Evidence, Option, _CosineScoreDetector, _standardized, register
from nctool.errors import NctoolError

ATTRIBUTE_WORDS = frozenset((
    # counts
    "no one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred "
    "many several few single some lots dozens numerous pair couple "
    # colours and tones
    "white red blue green yellow gray grey black brown orange purple pink dark light bright colorful colourful "
    # places in the picture
    "left right top bottom upper lower middle center centre corner side edge "
    # orientation and shape
    "horizontal horizontally vertical vertically diagonal diagonally parallel curved straight round square "
    "rectangular circular long short wide narrow large small big tiny huge"
).split())
"""The words that carry the detail a caption of another image of the same scene class gets wrong
(English; the one list the detector reads)."""

_WORD = re.compile(r"[a-z]+")


def attribute_sets(captions) -> list[frozenset[str]]:
    """The ATTRIBUTE_WORDS of each caption (lower-cased whole words)."""
    return [frozenset(word for word in _WORD.findall(str(caption).lower()) if word in ATTRIBUTE_WORDS)
            for caption in captions]


def image_members(codes: np.ndarray) -> np.ndarray:
    """Per image code (0 .. n-1), the list of rows holding its captions."""
    return pd.Series(np.arange(len(codes))).groupby(codes).agg(list).to_numpy()


def attribute_support(words: list[frozenset[str]], image_id: np.ndarray,
                      candidates: list[frozenset[str]] | None = None) -> np.ndarray:
    """For each pair i: the share of its caption's attribute words that some other caption of its image
    also uses (NaN when its caption has none, or its image has no other caption).

    With `candidates` (one set per pair), the same for candidate i's words against the same other
    captions (a decoy: pair i's image with another image's caption, checked against exactly what the
    pair is checked against, so that under the null the two are alike; with pair i's own caption among
    them, decoys stated a noisy-set precision of 95 % that measured 81 % at 80 % caption noise, 89 % without).
    """
    codes = pd.factorize(image_id)[0]
    members = image_members(codes)
    support = np.full(len(codes), np.nan)
    for i, code in enumerate(codes):
        own = words[i] if candidates is None else candidates[i]
        siblings = [j for j in members[code] if j != i]
        if not own or not siblings:
            continue
        seen = frozenset().union(*(words[j] for j in siblings))
        support[i] = len(own & seen) / len(own)
    return support


@register
class AttributesDetector(_CosineScoreDetector):
    """The caption's cosine with its image, and how far its attribute words are backed by its siblings.

    Hard noise, a caption of another image of the same scene class, names the right kind of things
    with the wrong counts, colours and places; a model trained on pooled embeddings hardly sees that
    (issue 19), but the other captions of the image say it. No training, no weight tuned on labels:

        c_i = x_i . t_i                                   the direct cosine
        u_i = |A(t_i) & union of A(t_j), j in S(i)| / |A(t_i)|   A: the caption's ATTRIBUTE_WORDS,
                                                          S(i): the other captions of i's image
        s_i = mean(c) + std(c) * (z(c)_i + lam * z(u)_i) / (1 + lam)    (z(c)_i alone where u_i is undefined)

    lam is `attribute_weight`. A decoy (image i, another image's caption) is scored in the data's
    context: its words against S(i), standardised with the pairs' means and spreads.
    Evidence: `similarity` (c), `attribute_support` (u; NaN without attribute words or siblings).
    """

    name = "attributes"
    description = ("the caption's cosine and how far its counts, colours and places are backed by the other "
                   "captions of its image")
    needs = frozenset({"captions"})
    options = _CosineScoreDetector.options + (
        Option("attribute_weight", float, 1.0, "weight of the attribute support against the direct cosine"),)
    attribute_weight: float

    def check(self) -> None:
        super().check()
        if not self.attribute_weight >= 0:
            raise NctoolError(f"attribute weight {self.attribute_weight:g}: must be at least 0 "
                              "(0 keeps the similarity alone)")

    def score(self, evidence: Evidence) -> tuple[np.ndarray, dict, np.ndarray | None]:
        if evidence.caption is None:
            raise NctoolError("attributes: the evidence holds no captions; score with nctool.detect.score.score, "
                              "which reads them for the detectors that need them")
        words = attribute_sets(evidence.caption)
        cosine = np.asarray(evidence.similarity, dtype=float)
        support = attribute_support(words, evidence.image_id)
        score = self._combined(cosine, cosine, support, support)
        decoys = None
        if evidence.decoy_caption is not None:
            decoy_support = attribute_support(words, evidence.image_id, [words[j] for j in evidence.decoy_caption])
            decoys = self._combined(np.asarray(evidence.decoy_similarity, dtype=float), cosine, decoy_support, support)
        return score, {"similarity": cosine, "attribute_support": support}, decoys

    def _combined(self, cosine: np.ndarray, pairs_cosine: np.ndarray, support: np.ndarray,
                  pairs_support: np.ndarray) -> np.ndarray:
        """s of `cosine` and `support`, standardised with the pairs' own means and spreads."""
        defined = ~np.isnan(pairs_support)
        vote = _standardized(cosine, pairs_cosine)
        if defined.any():  # where a caption has no attribute words or no siblings, its cosine alone votes
            backing = _standardized(np.nan_to_num(support), pairs_support[defined])
            vote = np.where(np.isnan(support), vote,
                            (vote + self.attribute_weight * backing) / (1 + self.attribute_weight))
        return pairs_cosine.mean() + pairs_cosine.std() * vote
