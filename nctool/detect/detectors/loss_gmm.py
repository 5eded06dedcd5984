"""The `loss-gmm` detector: a two-component Gaussian mixture on log(1 + loss) (the NCR family's split)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nctool.detect.detectors.base import _LABELS, Detector, Evidence, Option, register
from nctool.errors import NctoolError


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

        from nctool.detect.calibration import fit_mixture, noise_share
        from nctool.model import losses

        z = np.log1p(np.asarray(evidence.loss, dtype=float))
        mixture = fit_mixture(z, seed=evidence.seed)
        p_clean = expit(mixture.clean_log_odds(z))
        codes = np.where(p_clean >= self.clean_from, losses.CLEAN,
                         np.where(p_clean < self.noisy_below, losses.NOISY, losses.AMBIGUOUS))
        return self._frame(evidence, p_clean, _LABELS[codes], noise_share(mixture, z), loss=evidence.loss)
