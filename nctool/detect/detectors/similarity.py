"""The `similarity` detector: cosine of image and caption (the CLIP-score filter of LAION / DataComp)."""

from __future__ import annotations

import numpy as np

from nctool.detect.detectors.base import Evidence, _CosineScoreDetector, register


@register
class SimilarityDetector(_CosineScoreDetector):
    """s = cosine of the pair's global image and caption embeddings. Evidence: `similarity`."""

    name = "similarity"
    description = "cosine of image and caption embeddings (the CLIP-score filter of LAION / DataComp)"

    def score(self, evidence: Evidence) -> tuple[np.ndarray, dict, np.ndarray | None]:
        return evidence.similarity, {"similarity": evidence.similarity}, evidence.decoy_similarity
