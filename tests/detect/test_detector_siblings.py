import numpy as np
import pytest
import torch
from scipy.special import expit

from nctool.detect.detectors import Evidence, SiblingsDetector, SimilarityDetector, detector_options, make_detectors
from nctool.errors import NctoolError

CLEAN_A, OUTLIER, CLEAN_B, ALONE = [0, 1, 2, 3], 4, [5, 6, 7, 8, 9], 10


def outlier_evidence() -> Evidence:
    """Image A (1,0,0): 4 captions (0.6,0.8,0), cosine 0.6, and an outlier (0.8,0,0.6) with the higher
    cosine 0.8 that agrees with them only 0.48; image B (0,1,0): 5 captions (0,1,0), cosine 1;
    image C (0,0,1): 1 caption (0,0.6,0.8), cosine 0.8, no siblings."""
    text = torch.tensor([[0.6, 0.8, 0]] * 4 + [[0.8, 0, 0.6]] + [[0, 1, 0]] * 5 + [[0, 0.6, 0.8]], dtype=torch.float64)
    image = torch.tensor([[1, 0, 0]] * 5 + [[0, 1, 0]] * 5 + [[0, 0, 1]], dtype=torch.float64)
    return Evidence(pair_id=np.array([f"p{i:02d}" for i in range(11)]), image_id=np.array(list("AAAAABBBBBC")),
                    similarity=(image * text).sum(1).numpy(), image_global=image, text_global=text)


def z(values):
    return (values - values.mean()) / values.std()


def test_plain_mean_round_by_hand():
    evidence = outlier_evidence()
    out = SiblingsDetector(iterations=0).detect(evidence)
    # A's captions: 3 identical siblings (1) and the outlier (0.48); the outlier: 4 x 0.48; B: 4 x 1
    expected = np.array([0.87] * 4 + [0.48] + [1.0] * 5 + [np.nan])
    np.testing.assert_allclose(out["sibling_agreement"], expected, rtol=1e-12)
    c = evidence.similarity
    votes = (z(c)[:10] + z(expected[:10])) / 2
    np.testing.assert_allclose(out["reliability"][:10], (c.mean() + c.std() * votes + 1) / 2, rtol=1e-12)


def test_outlier_gets_the_lowest_reliability_though_its_cosine_is_not_the_lowest():
    evidence = outlier_evidence()
    assert evidence.similarity[OUTLIER] > evidence.similarity[CLEAN_A].max()
    for iterations in (0, 1, 3):
        out = SiblingsDetector(iterations=iterations).detect(evidence)
        assert out["reliability"].idxmin() == OUTLIER
        assert out["reliability"][OUTLIER] < out["reliability"][CLEAN_A].min()


def test_each_round_weighs_siblings_by_the_reliability_of_the_round_before():
    evidence = outlier_evidence()
    before = 2 * SiblingsDetector(iterations=0).detect(evidence)["reliability"].to_numpy() - 1
    w = expit(z(before))
    after = SiblingsDetector(iterations=1).detect(evidence)["sibling_agreement"].to_numpy()
    clean_a = (3 * w[1] * 1.0 + w[OUTLIER] * 0.48) / (3 * w[1] + w[OUTLIER])  # siblings of caption 0: 1, 2, 3, outlier
    np.testing.assert_allclose(after[:10], [clean_a] * 4 + [0.48] + [1.0] * 5, rtol=1e-12)
    assert clean_a > 0.87  # the outlier counts less than in the plain mean


def test_iterations_converge():
    evidence = outlier_evidence()
    rounds = [SiblingsDetector(iterations=n).detect(evidence)["reliability"].to_numpy() for n in (29, 30)]
    np.testing.assert_allclose(rounds[0], rounds[1], rtol=0, atol=1e-12)


def test_a_pair_without_siblings_keeps_its_own_similarity():
    evidence = outlier_evidence()
    out = SiblingsDetector().detect(evidence)
    assert out["reliability"][ALONE] == (evidence.similarity[ALONE] + 1) / 2
    assert np.isnan(out["sibling_agreement"][ALONE])


def test_sibling_weight_zero_is_the_similarity_detector():
    evidence = outlier_evidence()
    out = SiblingsDetector(sibling_weight=0.0, keep_fraction=0.5).detect(evidence)
    reference = SimilarityDetector(keep_fraction=0.5).detect(evidence)
    np.testing.assert_allclose(out["reliability"], reference["reliability"], rtol=1e-12)
    assert out["label"].tolist() == reference["label"].tolist()


def test_labels_follow_the_shared_cosine_options():
    evidence = outlier_evidence()
    out = SiblingsDetector(threshold=0.7).detect(evidence)
    assert (out["label"] == np.where(2 * out["reliability"] - 1 >= 0.7, "clean", "noisy")).all()
    assert (SiblingsDetector(keep_fraction=10 / 11).detect(evidence)["label"] == "noisy").tolist() == \
        [i == OUTLIER for i in range(11)]
    assert "siblings" in detector_options()["keep_fraction"][1]


@pytest.mark.parametrize("options, message", [
    ({"iterations": -1}, "iterations -1: must be at least 0"),
    ({"sibling_weight": -0.5}, "sibling weight -0.5: must be at least 0"),
    ({"sibling_weight": float("nan")}, "sibling weight nan: must be at least 0"),
    ({"keep_fraction": 0.0}, "keep fraction 0: outside"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(NctoolError, match=message):
        make_detectors(["siblings"], options)
