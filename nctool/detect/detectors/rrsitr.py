"""The `rrsitr` detector: RRSITR's per-pair loss of a trained model, labelled against decoys."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nctool.detect.detectors.base import (
    _LABELS,
    MAX_CONTAMINATION,
    NOISY_FROM,
    SCENE_DECOYS,
    Evidence,
    Option,
    _CalibratedDetector,
    loss_reliability,
    register,
)


@register
class RRSITRDetector(_CalibratedDetector):
    """RRSITR's per-pair loss of a trained model, labelled against decoys.

    The loss is the one the method trains with (losses.per_pair_loss on nctool.model.objectives' logits,
    four cross-entropy terms or two without local features), computed by scoring over fixed
    reference batches so that it does not depend on the order of the file. Reliability:
    `loss_reliability` (RRSITR's self-paced weight at g2), strictly decreasing in the loss.
    Labels (_CalibratedDetector, docs/labels.md): the decoys' losses (the pair's image with another
    image's caption, over the same reference batches) state the noise share, each pair's
    `noisy_probability` and `q_value`; noisy from `noisy_from` (0.9), clean up to `max_contamination`
    (0.05). The labels are cuts on the loss, so they follow the reliability ranking.
    The paper's g1/g2 split the loss for training (a batch at chance loss is all noisy, and the
    clean bin is what the self-paced weight trusts), not for a curator: on a trained model they put
    most pairs in between. `training_split` gives that split back: clean l < g1, ambiguous
    g1 <= l < g2, noisy l >= g2 (losses.split_by_loss), with (g1, g2) the checkpoint's thresholds
    scaled to the reference batch size (losses.recipe_thresholds); reliability is then above r(g1)
    exactly for the clean pairs and at most r(g2) exactly for the noisy ones.
    Evidence: `loss`, `loss_std`.
    """

    name = "rrsitr"
    description = "RRSITR's per-pair loss over fixed reference batches, labelled against decoys"
    needs = frozenset({"loss"})
    options = (NOISY_FROM, MAX_CONTAMINATION, SCENE_DECOYS,
               Option("training_split", bool, False, "label by the recipe's training thresholds g1/g2 instead of "
                                                     "the calibrated labels"))
    training_split: bool

    def detect(self, evidence: Evidence) -> pd.DataFrame:
        import torch

        from nctool.model.losses import split_by_loss

        g1, g2 = evidence.loss_thresholds
        decoys = None if evidence.decoy_loss is None else np.log1p(evidence.decoy_loss)
        scene = np.log1p(evidence.scene_decoy_loss) if self.scene_decoys and evidence.scene_decoy_loss is not None \
            else None
        labels, state, stated = self._calibrated(np.log1p(evidence.loss), decoys, evidence, scene)
        if self.training_split:
            loss = torch.from_numpy(np.asarray(evidence.loss, dtype=float))
            labels = _LABELS[split_by_loss(loss, g1, g2).numpy()]
        return self._frame(evidence, loss_reliability(evidence.loss, g2), labels, state(labels),
                           loss=evidence.loss, loss_std=evidence.loss_std, **stated)
