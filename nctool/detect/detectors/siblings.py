"""The `siblings` detector: agreement of each caption with the other captions of its image, weighted by
their reliability."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nctool.detect.detectors.base import Evidence, Option, _CosineScoreDetector, _standardized, register
from nctool.errors import NctoolError

if TYPE_CHECKING:
    import torch


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
    A decoy (image i, caption t of another image) is scored in the data's context: its siblings are
    S(i), pair i's own siblings weighted as in the last round (i's own caption, which its pair is not
    compared with, is left out too), and its terms are standardised with the pairs' means and spreads.
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
            raise NctoolError(f"sibling weight {self.sibling_weight:g}: must be at least 0 "
                              "(0 keeps the similarity alone)")

    def score(self, evidence: Evidence) -> tuple[np.ndarray, dict, np.ndarray | None]:
        import torch
        from scipy.special import expit

        texts = evidence.text_global.double()
        codes = torch.from_numpy(pd.factorize(evidence.image_id)[0]).to(texts.device)
        cosine = np.asarray(evidence.similarity, dtype=float)
        has = (torch.bincount(codes)[codes] > 1).cpu().numpy()
        weights = torch.ones(len(cosine), dtype=texts.dtype, device=texts.device)
        for round_ in range(self.iterations + 1):
            agreement = np.where(has, _sibling_mean(texts, codes, weights), np.nan)
            votes = _standardized(cosine)
            votes[has] = (votes[has] + self.sibling_weight * _standardized(agreement[has])) / (1 + self.sibling_weight)
            score = np.where(has, cosine.mean() + cosine.std() * votes, cosine)
            if round_ < self.iterations:  # the next round weighs each sibling by this round's score
                weights = torch.from_numpy(expit(_standardized(score))).to(texts.device)
        decoys = None
        if evidence.decoy_caption is not None:
            caption = texts[torch.from_numpy(evidence.decoy_caption).to(texts.device)]
            decoy_agreement = np.where(has, _sibling_mean(texts, codes, weights, caption), np.nan)
            vote = _standardized(evidence.decoy_similarity, cosine)
            vote[has] = (vote[has] + self.sibling_weight * _standardized(decoy_agreement[has], agreement[has])
                         ) / (1 + self.sibling_weight)
            decoys = np.where(has, cosine.mean() + cosine.std() * vote, evidence.decoy_similarity)
        return score, {"similarity": cosine, "sibling_agreement": agreement}, decoys


def _sibling_mean(texts: torch.Tensor, codes: torch.Tensor, weights: torch.Tensor,
                  captions: torch.Tensor | None = None) -> np.ndarray:
    """For each pair i: sum over the other pairs j of its image (codes) of w_j t_j . c_i, over the sum of
    those w_j, where c_i is i's own caption t_i or, given `captions`, the caption of i's decoy: a decoy is
    checked against exactly the siblings its pair is checked against. Meaningless (0/0) for a pair alone
    on its image."""
    import torch

    captions = texts if captions is None else captions.to(texts.dtype)
    groups = int(codes.max()) + 1
    weighted = torch.zeros(groups, texts.shape[1], dtype=texts.dtype, device=texts.device)
    weighted.index_add_(0, codes, weights[:, None] * texts)
    total = torch.zeros(groups, dtype=texts.dtype, device=texts.device).index_add_(0, codes, weights)
    own = weights * (texts * captions).sum(1)
    return (((captions * weighted[codes]).sum(1) - own) / (total[codes] - weights)).cpu().numpy()
