import numpy as np
import pandas as pd

from nctool.curate.review.learning import MIN_PER_CLASS, fit_noise_model, noise_features


def test_noise_features_are_standardised_with_missing_values_at_the_mean():
    pairs = pd.DataFrame({"reliability": [0.1, 0.3, 0.5], "reliability_similarity": [1.0, np.nan, 3.0],
                          "loss": [2.0, 2.0, 2.0], "caption": ["a b", "a b c d", "a b c"], "label": ["noisy"] * 3})
    features = noise_features(pairs)
    spread = np.sqrt(2 / 3)  # of 0.1, 0.3, 0.5 in tenths: (-1, 0, 1)
    assert np.allclose(features[:, 0], [-1 / spread, 0, 1 / spread])
    assert np.allclose(features[:, 1], [-1, 0, 1])  # 1 and 3 around their mean 2; the missing value at 0
    assert np.allclose(features[:, 2], 0)  # a constant column carries nothing
    assert np.allclose(features[:, 3], [-1 / spread, 1 / spread, 0])  # 2, 4, 3 words around 3
    assert features.shape == (3, 4)  # reliability, reliability_similarity, loss, caption words


def test_the_model_learns_the_curator_and_waits_for_both_kinds():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 3))
    noise = features[:, 1] > 0.3  # the curator calls noise what the second input says
    decided = np.arange(40)
    chance = fit_noise_model(features, decided, noise[decided])
    assert chance.shape == (200,)
    rest = np.arange(40, 200)
    top = rest[np.argsort(-chance[rest])][: noise[rest].sum()]
    # the learned order finds the noise first: 9 in 10 of its top pairs are noise, where 4 in 10 of all are
    assert noise[rest].mean() < 0.45 and noise[top].mean() >= 0.9
    few = np.flatnonzero(noise)[: MIN_PER_CLASS - 1]
    assert fit_noise_model(features, np.r_[few, np.flatnonzero(~noise)[:20]], np.r_[[True] * len(few), [False] * 20]) \
        is None
