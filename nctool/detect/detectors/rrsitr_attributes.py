"""The `rrsitr-attributes` detector: RRSITR's per-pair loss, joined by the attribute evidence of `attributes`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nctool.detect.detectors.attributes import _AttributeVotes, combined_vote
from nctool.detect.detectors.base import (
    MAX_CONTAMINATION,
    NOISY_FROM,
    SCENE_DECOYS,
    Evidence,
    _CalibratedDetector,
    register,
)


@register
class RRSITRAttributesDetector(_AttributeVotes, _CalibratedDetector):
    """RRSITR's per-pair loss as the model's vote, with the attribute votes of `attributes` beside it.

    The loss ranks pairs against a whole reference batch of captions, so it keeps its footing where most
    captions are wrong (caption shuffle at 80 %: 0.89 out of fold against the cosine's 0.82); the
    siblings' support and the tagger's reading add the fine detail the model's embeddings miss. With
    l_i the `rrsitr` loss and u_i, v_i as in AttributesDetector:

        vote_i = (z(-log(1 + l))_i + lam * z(u)_i + mu * z(v)_i) / (1 + lam + mu)   (undefined votes drop out)
        reliability_i = 1 / (1 + exp(-vote_i))            strictly increasing in the vote; 0.5 at the pairs' mean

    lam = `attribute_weight`, mu = `tagger_weight` (the options `attributes` takes, with its defaults).
    Labels: `_CalibratedDetector` on -vote against the decoys' -vote (their loss, their caption's words
    against the pair's siblings and the tagger's reading of the pair's image), same-scene decoys too.
    Evidence: `loss`, `loss_std`, `attribute_support`, `tagger_support` (with a tagger).
    """

    name = "rrsitr-attributes"
    description = ("RRSITR's per-pair loss, with how far the caption's counts, colours and places are backed by "
                   "the other captions of its image")
    needs = frozenset({"loss", "captions"})
    options = (NOISY_FROM, MAX_CONTAMINATION, SCENE_DECOYS) + _AttributeVotes.options

    def check(self) -> None:
        super().check()
        self.check_attribute_options()

    def votes(self, evidence: Evidence) -> tuple[np.ndarray, dict, np.ndarray | None]:
        """(the pairs' votes, the evidence columns, the votes of their decoys or None without decoys)."""
        terms, decoy_terms, columns = self.attribute_terms(evidence)
        pairs_terms = [(1.0, -np.log1p(np.asarray(evidence.loss, dtype=float))), *terms]
        decoys = None
        if decoy_terms is not None and evidence.decoy_loss is not None:
            decoys = combined_vote([(1.0, -np.log1p(np.asarray(evidence.decoy_loss, dtype=float))), *decoy_terms],
                                   pairs_terms)
        return combined_vote(pairs_terms, pairs_terms), columns, decoys

    def detect(self, evidence: Evidence) -> pd.DataFrame:
        vote, columns, decoys = self.votes(evidence)
        scene = self._scene_decoy_noise(evidence, lambda swapped: -self.votes(swapped)[2])
        labels, state, stated = self._calibrated(-vote, None if decoys is None else -decoys, evidence, scene)
        return self._frame(evidence, 1 / (1 + np.exp(-vote)), labels, state(labels), loss=evidence.loss,
                           loss_std=evidence.loss_std, **columns, **stated)
