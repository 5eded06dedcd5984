import numpy as np
import pytest
from cli_helpers import invoke

from nctool.data.words import ImageWords, attribute_sets
from nctool.detect.detectors import AttributesDetector, Evidence, RRSITRAttributesDetector, make_detectors
from nctool.detect.detectors.attributes import attribute_support
from nctool.errors import NctoolError


def test_attribute_words_are_counts_colours_places_and_shapes():
    assert attribute_sets(["Two WHITE planes in the lower-left corner, near a runway.", "a harbour"]) == [
        frozenset({"two", "white", "lower", "left", "corner"}), frozenset()]


def test_support_is_the_share_of_words_another_caption_of_the_image_uses():
    words = [frozenset({"two", "white"}), frozenset({"two", "red"}), frozenset(), frozenset({"red"})]
    image = np.array(["a", "a", "a", "b"])
    support = attribute_support(words, image)
    # "two" is backed, "white" is not; "red" of the second is not backed in its image (the 4th is image b)
    assert support[:2].tolist() == [0.5, 0.5] and np.isnan(support[2]) and np.isnan(support[3])  # no words / alone
    # a decoy: pair 0's image with the caption words {red, left}, against pair 0's other captions: "red" is there;
    # pair 3 has no other caption, so its decoy has no support either (its own caption is not counted)
    decoys = attribute_support(words, image, [frozenset({"red", "left"}), frozenset(), frozenset({"two"}),
                                              frozenset({"red"})])
    assert decoys[0] == 0.5 and np.isnan(decoys[1]) and decoys[2] == 1.0 and np.isnan(decoys[3])


def evidence() -> Evidence:
    """Image a: three captions; the third names another image's detail (red, four). Image b alone."""
    return Evidence(pair_id=np.array(["a0", "a1", "a2", "b0"]), image_id=np.array(["a", "a", "a", "b"]),
                    similarity=np.array([0.3, 0.3, 0.3, 0.2]),
                    caption=np.array(["two white planes", "two planes, white", "four red planes", "a field"]),
                    decoy_similarity=np.array([0.1, 0.2, 0.3, 0.0]), decoy_caption=np.array([3, 2, 0, 1]))


def test_the_score_is_the_cosine_moved_by_the_standardised_support():
    frame = AttributesDetector().detect(evidence())
    # supports 1, 1, 0 (b0: no words, its cosine alone); z(u) over the defined: (1, 1, 0) -> +0.7071, +0.7071, -1.4142
    cosine = np.array([0.3, 0.3, 0.3, 0.2])
    z_c = (cosine - cosine.mean()) / cosine.std()
    z_u = np.array([1, 1, 0]) - 2 / 3
    z_u = z_u / np.array([1, 1, 0]).std()
    vote = np.r_[(z_c[:3] + 0.5 * z_u) / 1.5, z_c[3]]  # the default attribute weight, 0.5
    expected = cosine.mean() + cosine.std() * vote
    assert frame["reliability"].to_numpy() == pytest.approx((expected + 1) / 2)
    assert frame["attribute_support"].to_numpy()[:3].tolist() == [1.0, 1.0, 0.0]
    assert frame["reliability"].iat[2] < frame["reliability"].iat[0]  # the wrong detail costs it


def test_decoys_are_scored_against_the_pair_siblings():
    detector = AttributesDetector(attribute_weight=1.0)
    score, columns, decoys = detector.score(evidence())
    # decoy 1: image a with "four red planes" (pair a2's caption), against a1's siblings a0 and a2: support 1
    # decoy 0: image a with "a field": no words, its cosine alone
    cosine = np.array([0.3, 0.3, 0.3, 0.2])
    z = (np.array([0.1, 0.2]) - cosine.mean()) / cosine.std()
    z_u = (1 - 2 / 3) / np.array([1, 1, 0]).std()
    assert decoys[0] == pytest.approx(cosine.mean() + cosine.std() * z[0])
    assert decoys[1] == pytest.approx(cosine.mean() + cosine.std() * (z[1] + z_u) / 2)


def read_by_a_tagger(probability_of_two_and_white) -> ImageWords:
    """A tagger that knows two words, "two" and "white", each at 0.5 in the reference."""
    probability = np.array(probability_of_two_and_white, dtype=float)
    return ImageWords(vocab=("two", "white"), reference=np.full_like(probability, 0.5), probability=probability)


def test_a_tagger_adds_a_third_vote_read_from_the_image(tmp_path):
    tagger = tmp_path / "tagger.pt"
    tagger.touch()  # the detector only names it; scoring reads it
    detector = make_detectors(["attributes"], {"tagger": str(tagger)})[0]
    assert "tags" in detector.needs and "tags" not in AttributesDetector.needs
    seen = evidence()
    # images a and b: the tagger finds "two" and "white" likely in a (0.9 each), "two" unlikely in b
    seen.image_words = read_by_a_tagger([[0.9, 0.9]] * 3 + [[0.1, 0.5]])
    score, columns, decoys = detector.score(seen)
    # v: a0, a1 use {two, white}: log(1.8); a2 {four, red}: none the tagger knows; b0 no words
    v = columns["tagger_support"]
    assert v[:2] == pytest.approx([np.log(1.8)] * 2) and np.isnan(v[2]) and np.isnan(v[3])
    cosine = np.array([0.3, 0.3, 0.3, 0.2])
    z_c = (cosine - cosine.mean()) / cosine.std()
    z_u = (np.array([1, 1, 0]) - 2 / 3) / np.array([1, 1, 0]).std()
    # default weights 0.5 and 0.5; z(v) is 0: both defined v are equal
    vote = np.r_[(z_c[:2] + 0.5 * z_u[:2] + 0) / 2, (z_c[2] + 0.5 * z_u[2]) / 1.5, z_c[3]]
    assert score == pytest.approx(cosine.mean() + cosine.std() * vote)
    # decoy 2: image a with a0's caption {two, white}, read in a: v = log(1.8), the pairs' mean, so z(v) = 0
    z_d = (0.3 - cosine.mean()) / cosine.std()
    assert decoys[2] == pytest.approx(cosine.mean() + cosine.std() * (z_d + 0.5 * z_u[0] + 0) / 2)


def test_with_a_tagger_a_decoy_holding_its_own_caption_scores_as_its_pair(tmp_path):
    (tmp_path / "tagger.pt").touch()
    detector = make_detectors(["attributes"], {"tagger": str(tmp_path / "tagger.pt"), "tagger_weight": 2.0})[0]
    seen = evidence()
    seen.image_words = read_by_a_tagger([[0.9, 0.2], [0.8, 0.7], [0.3, 0.1], [0.5, 0.5]])
    seen.decoy_similarity, seen.decoy_caption = seen.similarity.copy(), np.arange(4)
    score, _, decoys = detector.score(seen)
    np.testing.assert_allclose(decoys, score)


def test_without_the_tagger_reading_a_tagger_detector_refuses(tmp_path):
    (tmp_path / "tagger.pt").touch()
    detector = make_detectors(["attributes"], {"tagger": str(tmp_path / "tagger.pt")})[0]
    with pytest.raises(NctoolError, match="the tagger's reading"):
        detector.score(evidence())


def test_no_captions_and_a_bad_weight_are_one_line_errors():
    with pytest.raises(NctoolError, match="the evidence lacks the captions"):
        AttributesDetector().score(Evidence(pair_id=np.array(["a"]), image_id=np.array(["a"]), similarity=np.ones(1)))
    with pytest.raises(NctoolError, match="attribute weight -1: must be at least 0"):
        make_detectors(["attributes"], {"attribute_weight": -1.0})
    with pytest.raises(NctoolError, match="tagger weight -0.5: must be at least 0"):
        make_detectors(["attributes"], {"tagger_weight": -0.5})


def test_cli_maps_the_attribute_weight(monkeypatch):
    import nctool.detect.score

    calls = []
    monkeypatch.setattr(nctool.detect.score, "score", lambda *args, **kwargs: calls.append(kwargs) or
                        {"out": "s.parquet", "pairs": 3, "splits": ["train"], "labels": [], "noise_share": [],
                         "detectors": [{"detector": "attributes", "clean": 2, "ambiguous": 0, "noisy": 1}]})
    result = invoke("score", "d.parquet", "--checkpoint", "m.pt", "--detector", "attributes", "--attribute-weight",
                    "2", "--out", "s.parquet")
    assert result.exit_code == 0, result.output
    assert calls[0]["detectors"] == ["attributes"] and calls[0]["options"]["attribute_weight"] == 2.0


def test_rrsitr_attributes_votes_with_the_loss_in_place_of_the_cosine():
    seen = evidence()
    seen.loss = np.expm1([0.0, 1.0, 1.0, 2.0])  # -log(1 + l) = 0, -1, -1, -2
    seen.loss_std = np.zeros(4)
    frame = RRSITRAttributesDetector().detect(seen)
    model = np.array([0.0, -1.0, -1.0, -2.0])
    z_l = (model - model.mean()) / model.std()
    z_u = (np.array([1, 1, 0]) - 2 / 3) / np.array([1, 1, 0]).std()
    vote = np.r_[(z_l[:3] + 0.5 * z_u) / 1.5, z_l[3]]  # b0 has no attribute words: the loss alone
    assert frame["reliability"].to_numpy() == pytest.approx(1 / (1 + np.exp(-vote)))
    assert frame["loss"].to_numpy() == pytest.approx(seen.loss) and frame["attribute_support"].iat[2] == 0.0
    # a2 and a1 have the same loss; the wrong detail (four red, backed by no sibling) puts a2 below a1
    assert frame["reliability"].iat[2] < frame["reliability"].iat[1]


def test_rrsitr_attributes_decoy_holding_its_own_caption_and_loss_scores_as_its_pair(tmp_path):
    (tmp_path / "tagger.pt").touch()
    detector = make_detectors(["rrsitr-attributes"], {"tagger": str(tmp_path / "tagger.pt")})[0]
    assert {"loss", "captions", "tags"} <= detector.needs
    seen = evidence()
    seen.image_words = read_by_a_tagger([[0.9, 0.2], [0.8, 0.7], [0.3, 0.1], [0.5, 0.5]])
    seen.loss = np.array([0.5, 2.0, 3.0, 1.0])
    seen.decoy_loss, seen.decoy_caption = seen.loss.copy(), np.arange(4)
    vote, _, decoys = detector.votes(seen)
    np.testing.assert_allclose(decoys, vote)
