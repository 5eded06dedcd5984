"""Noisy-correspondence detectors, registered by name (in the style of cleanlab's issue managers).

The interface, the registry and what several detectors share live in `base` (its docstring says what a
detector returns and how the registry drives `nctool score` and `nctool bench`). A new detector is a
new file: subclass `Detector`, decorate it with `@register`, import it here. The imports below set the
registration order, which is the order of `detector_names()`.

Registered here (formulas in each class):
- `rrsitr`:     the RRSITR per-pair loss over fixed reference batches, labelled by a mixture fitted to it;
- `similarity`: cosine of image and caption (the CLIP-score filter of LAION / DataComp);
- `loss-gmm`:   two-component Gaussian mixture on the same loss (the NCR family's split);
- `neighbors`:  training-free agreement of each pair with its nearest neighbours (LEMoN-like).
- `siblings`:   agreement of each caption with the other captions of its image, by their reliability;
- `attributes`: the cosine and how far the caption's counts, colours and places are backed by its siblings;
- `rrsitr-attributes`: the `rrsitr` loss with the same attribute evidence beside it.
"""

from __future__ import annotations

from nctool.detect.detectors.base import (
    CHUNK_ELEMENTS,
    DETECTORS,
    Detector,
    Evidence,
    Option,
    detector_names,
    detector_options,
    loss_reliability,
    make_detectors,
    register,
)

# isort: off
# registration order = the order of detector_names(), so these stay in this order, not sorted
from nctool.detect.detectors.rrsitr import RRSITRDetector
from nctool.detect.detectors.similarity import SimilarityDetector
from nctool.detect.detectors.loss_gmm import LossGMMDetector
from nctool.detect.detectors.neighbors import NeighborsDetector
from nctool.detect.detectors.siblings import SiblingsDetector
from nctool.detect.detectors.attributes import AttributesDetector
from nctool.detect.detectors.rrsitr_attributes import RRSITRAttributesDetector
# isort: on

__all__ = [
    "AttributesDetector", "CHUNK_ELEMENTS", "DETECTORS", "Detector", "Evidence", "LossGMMDetector",
    "NeighborsDetector", "Option", "RRSITRAttributesDetector", "RRSITRDetector", "SiblingsDetector",
    "SimilarityDetector", "detector_names", "detector_options", "loss_reliability", "make_detectors", "register",
]
