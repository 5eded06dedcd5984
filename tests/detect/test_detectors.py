import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from cli_helpers import invoke

from nctool.detect import detectors
from nctool.detect.detectors import (
    DETECTORS,
    Detector,
    Evidence,
    LossGMMDetector,
    NeighborsDetector,
    Option,
    RRSITRDetector,
    SiblingsDetector,
    SimilarityDetector,
    detector_names,
    detector_options,
    loss_reliability,
    make_detectors,
    register,
)
from nctool.detect.detectors import base as detector_base
from nctool.detect.detectors import neighbors as neighbor_search
from nctool.errors import NctoolError
from nctool.metrics import detection_metrics

SWAPPED = [0, 7, 13]  # rows whose captions trade places, 0 -> 7 -> 13 -> 0 (three different classes)


def clustered_evidence(loss=None) -> tuple[Evidence, np.ndarray]:
    """4 scene classes along orthogonal axes, 3 images each, 2 captions per image; SWAPPED rows noisy."""
    gen = torch.Generator().manual_seed(0)
    classes, images_per_class, captions = 4, 3, 2
    axes = torch.eye(16)[:classes]
    image = F.normalize(axes.repeat_interleave(images_per_class, 0) + 0.15 * torch.randn(12, 16, generator=gen), dim=1)
    image_rows = image.repeat_interleave(captions, 0)
    text = F.normalize(image_rows + 0.15 * torch.randn(24, 16, generator=gen), dim=1)
    text[SWAPPED] = text[np.roll(SWAPPED, 1)].clone()
    noisy = np.isin(np.arange(24), SWAPPED)
    evidence = Evidence(pair_id=np.array([f"p{i:02d}" for i in range(24)]),
                        image_id=np.array([f"img{i // captions}" for i in range(24)]),
                        similarity=(image_rows * text).sum(1).double().numpy(), loss=loss,
                        image_global=image_rows, text_global=text,
                        caption=np.array([f"caption {i}" for i in range(24)]))  # no attribute words: cosine decides
    return evidence, noisy


def test_every_detector_has_the_interface():
    evidence, noisy = clustered_evidence(loss=np.where(np.isin(np.arange(24), SWAPPED), 20.0, 2.0) + np.arange(24) / 10)
    evidence.loss_std, evidence.loss_thresholds = np.zeros(24), (5.0, 18.0)
    for detector in make_detectors(["all"]):
        out = detector.detect(evidence)
        assert list(out.columns[:4]) == ["pair_id", "reliability", "label", "detector"]
        assert (out["detector"] == detector.name).all() and list(out["pair_id"]) == list(evidence.pair_id)
        assert out["reliability"].between(0, 1).all() and set(out["label"]) <= {"clean", "ambiguous", "noisy"}
        assert detection_metrics(noisy, 1 - out["reliability"])["auroc"] == 1.0, detector.name
        assert {"estimate", "low", "high"} <= set(out.attrs["noise_share"]), detector.name


@pytest.mark.parametrize("detector", [SimilarityDetector(keep_fraction=0.875),
                                      NeighborsDetector(neighbors=3, keep_fraction=0.875)])
def test_swapped_pairs_are_found(detector):
    evidence, noisy = clustered_evidence()
    out = detector.detect(evidence)
    assert set(out.nsmallest(3, "reliability").index) == set(SWAPPED)
    assert (out["label"] == "noisy").tolist() == noisy.tolist()  # 21 of 24 kept
    assert (out.loc[noisy, "caption_agreement" if detector.name == "neighbors" else "similarity"] < 0.5).all()


def test_similarity_reliability_and_threshold():
    evidence, _ = clustered_evidence()
    out = SimilarityDetector(threshold=0.5).detect(evidence)
    np.testing.assert_allclose(out["reliability"], (evidence.similarity + 1) / 2)
    assert (out["label"] == np.where(evidence.similarity >= 0.5, "clean", "noisy")).all()


def test_keep_fraction_breaks_ties_by_pair_id():
    evidence = Evidence(pair_id=np.array(["b", "a", "c", "d"]), image_id=np.array(["1", "2", "3", "4"]),
                        similarity=np.array([0.3, 0.3, 0.3, 0.1]))
    labels = SimilarityDetector(keep_fraction=0.25).detect(evidence)["label"]
    assert labels.tolist() == ["noisy", "clean", "noisy", "noisy"]


def test_neighbors_formula_on_a_hand_case():
    # images A (1,0), B (0.8,0.6), C (0,1); captions: A (1,0); B (0.6,0.8) and (1,0); C (0,1); k = 1
    image = torch.tensor([[1, 0], [0.8, 0.6], [0.8, 0.6], [0, 1]])
    text = torch.tensor([[1, 0], [0.6, 0.8], [1, 0], [0, 1]])
    evidence = Evidence(pair_id=np.array(["A", "B1", "B2", "C"]), image_id=np.array(["A", "B", "B", "C"]),
                        similarity=(image * text).sum(1).double().numpy(), image_global=image, text_global=text)
    out = NeighborsDetector(neighbors=1).detect(evidence)
    # A: nearest image B, whose mean caption (0.8, 0.4) . (1,0) = 0.8; nearest caption B2 (1,0), x_B . x_A = 0.8
    # C: nearest image B: (0.8, 0.4) . (0,1) = 0.4; nearest caption B1 (cos 0.8), x_B . x_C = 0.6
    # B1: nearest image A (0.8 > 0.6): (1,0) . (0.6,0.8) = 0.6; nearest caption C (0.8 > A's 0.6), x_C . x_B = 0.6
    np.testing.assert_allclose(out["caption_agreement"], [0.8, 0.6, 1.0, 0.4], atol=1e-6)
    np.testing.assert_allclose(out["image_agreement"], [0.8, 0.6, 0.8, 0.6], atol=1e-6)
    c, a, b = (out[name].to_numpy() for name in ("similarity", "caption_agreement", "image_agreement"))
    z = [(v - v.mean()) / v.std() for v in (c, a, b)]
    np.testing.assert_allclose(out["reliability"], (np.clip(c.mean() + c.std() * sum(z) / 3, -1, 1) + 1) / 2)


def shuffled_classes(images=200, captions=5, share=0.3, seed=0) -> tuple[Evidence, np.ndarray]:
    """10 scene classes along orthogonal axes in 32 dimensions; a `share` of the captions swapped at random."""
    gen, rng = torch.Generator().manual_seed(seed), np.random.default_rng(seed)
    image = F.normalize(torch.eye(32)[torch.arange(images) % 10] + 0.08 * torch.randn(images, 32, generator=gen), dim=1)
    rows = image.repeat_interleave(captions, 0)
    text = F.normalize(rows + 0.08 * torch.randn(len(rows), 32, generator=gen), dim=1)
    swapped = rng.permutation(np.flatnonzero(rng.random(len(rows)) < share))
    text[swapped] = text[np.roll(swapped, 1)].clone()
    evidence = Evidence(pair_id=np.array([f"p{i:04d}" for i in range(len(rows))]),
                        image_id=np.array([f"img{i // captions}" for i in range(len(rows))]),
                        similarity=(rows * text).sum(1).double().numpy(), image_global=rows, text_global=text)
    return evidence, np.isin(np.arange(len(rows)), swapped)


def test_faiss_flat_index_finds_the_exact_neighbours():
    columns = ["reliability", "caption_agreement", "image_agreement"]
    for evidence, k in ((clustered_evidence()[0], 3), (shuffled_classes()[0], 10)):
        exact = NeighborsDetector(neighbors=k).detect(evidence)
        flat = NeighborsDetector(neighbors=k, neighbor_index="faiss").detect(evidence)
        # the same neighbours; only the float32 sum over them may run in another order
        np.testing.assert_allclose(flat[columns], exact[columns], rtol=0, atol=1e-6)
        assert flat["label"].tolist() == exact["label"].tolist()


def test_faiss_approximate_index_keeps_the_detection_quality(monkeypatch):
    monkeypatch.setattr(neighbor_search, "FLAT_UP_TO", 0)  # IVF from the first key on
    evidence, noisy = shuffled_classes()
    exact = NeighborsDetector().detect(evidence)
    approximate = NeighborsDetector(neighbor_index="faiss").detect(evidence)
    assert not np.allclose(approximate["image_agreement"], exact["image_agreement"])  # IVF misses some neighbours
    pd.testing.assert_frame_equal(NeighborsDetector(neighbor_index="faiss").detect(evidence), approximate)  # seeded
    auroc = {name: detection_metrics(noisy, 1 - out["reliability"])["auroc"]
             for name, out in (("exact", exact), ("approximate", approximate))}
    assert auroc["exact"] > 0.95 and abs(auroc["approximate"] - auroc["exact"]) < 0.01, auroc


def test_faiss_index_without_the_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    with pytest.raises(NctoolError, match=r"faiss is not installed; pip install 'nctool\[faiss\]'"):
        make_detectors(["neighbors"], {"neighbor_index": "faiss"})
    assert make_detectors(["neighbors"])[0].neighbor_index == "exact"  # the default needs no faiss


def test_score_help_lists_the_neighbor_index():
    assert "--neighbor-index" in invoke("score", "--help").output


def test_neighbors_needs_two_images():
    evidence = Evidence(pair_id=np.array(["a", "b"]), image_id=np.array(["x", "x"]), similarity=np.ones(2),
                        image_global=torch.eye(2), text_global=torch.eye(2))
    with pytest.raises(NctoolError, match="at least 2 images"):
        NeighborsDetector().detect(evidence)


def test_loss_reliability_is_strictly_decreasing():
    loss = np.linspace(0, 100, 100_001)
    reliability = loss_reliability(loss, g2=18.0)
    assert reliability[0] == 1.0 and (np.diff(reliability) < 0).all() and reliability[-1] > 0


def bimodal_loss(noise_share=0.3, pairs=2000):
    """Evidence with a log-normal clean loss mode (median 3) and a noisy one (median 20); the first rows noisy."""
    rng = np.random.default_rng(0)
    noisy = np.arange(pairs) < round(noise_share * pairs)
    loss = np.where(noisy, rng.lognormal(np.log(20), 0.3, pairs), rng.lognormal(np.log(3), 0.3, pairs))
    ids = np.array([f"p{i:05d}" for i in range(pairs)])
    return Evidence(pair_id=ids, image_id=ids, similarity=np.zeros(pairs), loss=loss, loss_std=np.zeros(pairs),
                    loss_thresholds=(5.0, 18.0)), noisy


def test_rrsitr_calibrated_labels_on_a_known_noise_share():
    evidence, noisy = bimodal_loss()
    out = RRSITRDetector().detect(evidence)
    labels = out["label"].to_numpy()
    assert abs(out.attrs["noise_share"]["estimate"] - 0.3) <= 0.03
    assert noisy[labels == "noisy"].mean() >= 0.9 and (labels[~noisy] == "clean").mean() >= 0.9
    assert (labels == "ambiguous").mean() < 0.15
    # the labels are cuts on the reliability ranking
    by_reliability = pd.Categorical(labels, ["noisy", "ambiguous", "clean"]).codes[np.argsort(out["reliability"])]
    assert (np.diff(by_reliability) >= 0).all()
    np.testing.assert_array_equal(out["reliability"], loss_reliability(evidence.loss, 18.0))


def test_cosine_detectors_label_by_the_mixture_unless_told_otherwise():
    evidence, noisy = bimodal_loss()
    evidence.similarity = 0.8 - np.log(evidence.loss) / 5  # a cosine that falls with the loss
    labels = SimilarityDetector().detect(evidence)["label"].to_numpy()
    assert noisy[labels == "noisy"].mean() >= 0.9 and (labels[~noisy] == "clean").mean() >= 0.9
    assert (SimilarityDetector(keep_fraction=0.6).detect(evidence)["label"] == "clean").mean() == 0.6


def test_rrsitr_training_split_follows_the_thresholds():
    loss = np.array([0.0, 4.9, 5.0, 17.9, 18.0, 40.0])
    evidence = Evidence(pair_id=np.array(list("abcdef")), image_id=np.array(list("abcdef")), similarity=np.zeros(6),
                        loss=loss, loss_std=np.zeros(6), loss_thresholds=(5.0, 18.0))
    out = RRSITRDetector(training_split=True).detect(evidence)
    assert out["label"].tolist() == ["clean", "clean", "ambiguous", "ambiguous", "noisy", "noisy"]
    r_g1, r_g2 = loss_reliability(np.array([5.0, 18.0]), 18.0)
    assert ((out["reliability"] > r_g1) == (out["label"] == "clean")).all()
    assert ((out["reliability"] <= r_g2) == (out["label"] == "noisy")).all()
    assert out["reliability"].is_monotonic_decreasing and out["loss"].tolist() == loss.tolist()


def test_loss_gmm_is_monotone_in_the_loss():
    rng = np.random.default_rng(0)
    # a narrow clean mode and a broad noisy one: a per-component variance would bend back at the ends
    loss = np.concatenate([rng.lognormal(0.5, 0.2, 300), rng.lognormal(2.8, 0.6, 200), [0.0, 1e4]])
    evidence = Evidence(pair_id=np.arange(len(loss)).astype(str), image_id=np.arange(len(loss)).astype(str),
                        similarity=np.zeros(len(loss)), loss=loss)
    out = LossGMMDetector().detect(evidence)
    by_loss = out["reliability"].to_numpy()[np.argsort(loss)]
    assert (np.diff(by_loss) <= 0).all() and by_loss[0] > 0.99 and by_loss[-1] < 0.01
    assert (out["label"][:300] == "clean").mean() > 0.95 and (out["label"][300:500] == "noisy").mean() > 0.9
    assert ((out["reliability"] >= 0.75) == (out["label"] == "clean")).all()
    assert ((out["reliability"] < 0.25) == (out["label"] == "noisy")).all()


def test_make_detectors_hands_each_detector_its_own_options():
    chosen = make_detectors(["similarity", "all"], {"neighbors": 3, "keep_fraction": 0.5, "clean_from": 0.9})
    assert [d.name for d in chosen] == ["similarity", "rrsitr", "loss-gmm", "neighbors", "siblings", "attributes",
                                        "rrsitr-attributes"]
    similarity, _, gmm, neighbors, *_ = chosen
    assert (similarity.keep_fraction, similarity.threshold) == (0.5, None) and not hasattr(similarity, "neighbors")
    assert (gmm.clean_from, gmm.noisy_below) == (0.9, 0.25)
    assert (neighbors.neighbors, neighbors.keep_fraction) == (3, 0.5)


@pytest.mark.parametrize("names, options, message", [
    (["clip"], {}, "detector 'clip': unknown; choose from rrsitr, similarity, loss-gmm, neighbors, siblings, "
                   "attributes, rrsitr-attributes or all"),
    ([], {}, "detector '': unknown"),
    (["similarity"], {"k": 3},
     "detector option 'k': unknown; detectors take noisy_from, max_contamination, scene_decoys, training_split, "
     "keep_fraction, threshold"),
    (["similarity"], {"max_contamination": 0.0}, r"max contamination 0: outside \(0, 1\)"),
    (["similarity"], {"keep_fraction": 1.5}, "keep fraction 1.5"),
    (["neighbors"], {"threshold": 2.0}, "threshold 2"),
    (["neighbors"], {"neighbors": 0}, "neighbors 0: give at least 1 neighbour"),
    (["neighbors"], {"neighbor_index": "hnsw"}, "neighbor index 'hnsw': unknown; choose exact or faiss"),
    (["loss-gmm"], {"clean_from": 0.2}, "need 0 <= noisy-below <= clean-from <= 1"),
    (["rrsitr"], {"noisy_from": 0.3}, r"noisy from 0.3: outside \[0.5, 1\]"),
])
def test_make_detectors_refuses(names, options, message):
    with pytest.raises(NctoolError, match=message):
        make_detectors(names, options)


def test_registry_is_the_one_list_of_detectors():
    assert detector_names() == tuple(DETECTORS) == ("rrsitr", "similarity", "loss-gmm", "neighbors", "siblings",
                                                    "attributes", "rrsitr-attributes")
    assert all(cls.description and "\n" not in cls.description for cls in DETECTORS.values())
    options = detector_options()
    assert (options["keep_fraction"][1] == ("similarity", "neighbors", "siblings", "attributes")
            and options["neighbors"][1] == ("neighbors",)
            and options["tagger"][1] == ("attributes", "rrsitr-attributes"))
    assert options["threshold"][0].flag == "--threshold" and options["clean_from"][0].flag == "--clean-from"
    with pytest.raises(NctoolError, match="rrsitr: no option 'threshold'; its options are noisy_from, "
                                          "max_contamination, scene_decoys, training_"):
        RRSITRDetector(threshold=0.3)


def test_a_new_detector_is_one_registered_class(monkeypatch):
    monkeypatch.setattr(detector_base, "DETECTORS", dict(DETECTORS))

    @register
    class Constant(Detector):
        name = "constant"
        description = "every pair equally reliable"
        options = (Option("level", float, 0.5, "the reliability"),)

        def detect(self, evidence):
            return self._frame(evidence, np.full(len(evidence.pair_id), self.level),
                               np.full(len(evidence.pair_id), "clean"))

    assert detectors.detector_names()[-1] == "constant" and detectors.detector_options()["level"][1] == ("constant",)
    [made] = detectors.make_detectors(["constant"], {"level": 0.25})
    evidence, _ = clustered_evidence()
    assert made.detect(evidence)["reliability"].tolist() == [0.25] * 24
    assert [d.name for d in detectors.make_detectors(["all"])][-1] == "constant"


@pytest.mark.parametrize("attributes, message", [
    ({"name": "similarity", "description": "again"}, "name 'similarity' is taken"),
    ({"name": "all", "description": "every"}, "name 'all' is taken"),
    ({"name": "quiet", "description": ""}, "needs a name and a one-line description"),
    ({"name": "needy", "description": "x", "needs": frozenset({"pixels"})}, r"needs \['pixels'\]"),
    ({"name": "clash", "description": "x", "options": (Option("keep_fraction", float, 0.3, "other default"),)},
     "option 'keep_fraction' differs from similarity, neighbors, siblings, attributes's"),
])
def test_register_refuses_a_malformed_detector(monkeypatch, attributes, message):
    monkeypatch.setattr(detector_base, "DETECTORS", dict(DETECTORS))
    with pytest.raises(TypeError, match=message):
        register(type("Bad", (Detector,), attributes))


@pytest.mark.parametrize("detector", [NeighborsDetector(neighbors=3), SiblingsDetector()], ids=lambda d: d.name)
def test_a_decoy_holding_the_pairs_own_caption_scores_as_the_pair(detector):
    # a decoy is scored in the data's context, against exactly what its pair is checked against: with its
    # own caption a "decoy" is the pair itself (siblings once compared a decoy with its pair's own caption too)
    evidence, _ = clustered_evidence()
    evidence.image_id[-1] = "alone"  # a pair without siblings keeps its cosine, and so does its decoy
    evidence.decoy_similarity, evidence.decoy_caption = evidence.similarity.copy(), np.arange(24)
    score, _, decoys = detector.score(evidence)
    np.testing.assert_allclose(decoys, score, rtol=1e-6)


@pytest.mark.parametrize("name", ["rrsitr", "similarity", "neighbors", "siblings"])
def test_too_few_decoys_state_nothing(name):
    # 24 decoys: no cut has 50 above it; a share read there would be noise (it said 0, every pair clean)
    evidence, noisy = clustered_evidence(loss=np.where(np.isin(np.arange(24), SWAPPED), 20.0, 2.0) + np.arange(24) / 10)
    evidence.loss_std, evidence.loss_thresholds = np.zeros(24), (5.0, 18.0)
    other = (np.arange(24) + 6) % 24  # the caption of a pair of another class
    evidence.decoy_caption = other
    evidence.decoy_similarity = (evidence.image_global * evidence.text_global[other]).sum(1).double().numpy()
    evidence.decoy_loss = np.full(24, 20.0) + np.arange(24) / 10
    out = make_detectors([name])[0].detect(evidence)
    share = out.attrs["noise_share"]
    assert (share["method"], share["estimate"], share["clean"], share["decoys_needed"]) == ("decoys", None, 0, 53)
    assert (out["label"] == "ambiguous").all() and out["noisy_probability"].isna().all()


@pytest.mark.parametrize("name", ["rrsitr", "similarity"])
def test_detectors_with_decoys_state_their_labels(name):
    evidence, noisy = bimodal_loss(noise_share=0.3, pairs=2000)
    rng = np.random.default_rng(1)
    evidence.decoy_loss = rng.lognormal(np.log(20), 0.3, 2000)  # drawn as the noisy pairs' losses
    evidence.similarity = -np.log1p(evidence.loss) / 10
    evidence.decoy_similarity = -np.log1p(evidence.decoy_loss) / 10
    out = make_detectors([name])[0].detect(evidence)
    share = out.attrs["noise_share"]
    assert share["method"] == "decoys" and share["low"] <= noisy.mean() <= share["high"]
    assert share["clean"] == (out["label"] == "clean").sum() > 0
    clean = (out["label"] == "clean").to_numpy()
    assert abs(noisy[clean].mean() - share["clean_contamination"]) < 0.02
    order = np.argsort(out["reliability"].to_numpy())[::-1]  # most reliable first: q-values never fall
    assert (np.diff(out["q_value"].to_numpy()[order]) >= -1e-12).all()
