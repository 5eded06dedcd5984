import io

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import invoke, run_cli
from PIL import Image

import nctool.model.tagger
from nctool.data.words import ImageWords, word_shares
from nctool.errors import NctoolError
from nctool.model.checkpoint import read_checkpoint, save_checkpoint
from nctool.model.tagger import Tagger, WordTagger, image_word_probabilities, load_tagger, train_tagger
from nctool.schema import write_table


def test_word_shares_are_the_share_of_an_image_captions_using_each_word():
    captions = ["two white planes", "two planes", "a red roof", "Red, RED roofs"]
    shares = word_shares(captions, np.array([0, 0, 1, 1]), ["red", "two", "white"])
    np.testing.assert_array_equal(shares, [[0, 1, 0.5], [1, 0, 0]])


def test_support_is_the_mean_log_ratio_of_the_caption_words_against_their_reference():
    words = ImageWords(vocab=("red", "two"), reference=np.array([[0.5, 0.25], [0.5, 0.25]]),
                       probability=np.array([[1.0, 0.5], [0.0, 0.25]]))
    support = words.support([frozenset({"red", "two", "unknown"}), frozenset({"red"})])
    # pair 0: log(1 / 0.5) and log(0.5 / 0.25), "unknown" not read; pair 1: a word ruled out counts at the floor 1e-4
    assert support[0] == pytest.approx(np.log(2))
    assert support[1] == pytest.approx(np.log(1e-4 / 0.5))
    assert np.isnan(words.support([frozenset({"unknown"})])[0])


def coloured(colour: str, size: int = 16) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def colour_corpus(images: int) -> pd.DataFrame:
    """Half red squares captioned "a red patch", half blue ones "a blue patch"; two captions each."""
    rows = []
    for k in range(images):
        colour = ("red", "blue")[k % 2]
        rows += [{"pair_id": f"c/{k}#{j}", "image_id": f"c/{k}", "image": coloured(colour), "split": "train",
                  "caption": f"a {colour} patch{' seen from above' * j}"} for j in range(2)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tagger")
    write_table(colour_corpus(48), folder / "corpus.parquet")
    summary = train_tagger(folder / "corpus.parquet", folder / "tagger.pt", epochs=8, batch_size=16, min_count=2,
                           image_size=16, lr=1e-2)
    return folder, summary


def test_a_tagger_learns_which_words_an_image_captions_use(colours):
    folder, summary = colours
    assert (summary["images"], summary["words"], summary["val_loss"]) == (48, 2, None)
    tagger = load_tagger(folder / "tagger.pt")
    assert tagger.vocab == ("blue", "red") and tagger.base_rate.tolist() == [0.5, 0.5]
    read = image_word_probabilities(tagger, folder / "corpus.parquet", np.array(["c/0", "c/1", "c/0"]))
    red, blue = read.probability[0], read.probability[1]
    assert red[1] > 0.9 > 0.1 > red[0] and blue[0] > 0.9 > 0.1 > blue[1]  # a red square reads red, not blue
    np.testing.assert_array_equal(read.probability[2], read.probability[0])  # per pair, from its image
    assert read.support([frozenset({"red"})] * 3)[0] > 0 > read.support([frozenset({"blue"})] * 3)[0]


def test_each_word_is_weighed_against_the_reading_of_its_kind_of_scene(colours, tmp_path):
    folder, _ = colours
    tagger = load_tagger(folder / "tagger.pt")
    corpus = colour_corpus(6)  # red, blue, red, blue, red, blue
    corpus["category"] = corpus["image_id"].map({"c/0": "x", "c/1": "x", "c/2": "y", "c/3": "y", "c/4": "y"})
    write_table(corpus, tmp_path / "kinds.parquet")  # c/5 has no category
    images = np.array(["c/0", "c/1", "c/2", "c/3", "c/4", "c/5"])
    read = image_word_probabilities(tagger, tmp_path / "kinds.parquet", images)
    p = read.probability
    np.testing.assert_allclose(read.reference[:2], [(p[0] + p[1]) / 2] * 2)
    np.testing.assert_allclose(read.reference[2:5], [(p[2] + p[3] + p[4]) / 3] * 3)
    np.testing.assert_allclose(read.reference[5], tagger.base_rate)  # no category: the corpus's base rate
    plain = image_word_probabilities(tagger, folder / "corpus.parquet", images)
    np.testing.assert_allclose(plain.reference, [tagger.base_rate] * 6)
    # streamed three rows at a time (an image's two captions split over batches): the same reading, up to float32
    # rounding of the network over other batches
    streamed = image_word_probabilities(tagger, tmp_path / "kinds.parquet", images, batch_size=3)
    np.testing.assert_allclose(streamed.probability, read.probability, rtol=1e-5)
    np.testing.assert_allclose(streamed.reference, read.reference, rtol=1e-5)
    with pytest.raises(NctoolError, match="image 'c/9' is not in the file"):
        image_word_probabilities(tagger, tmp_path / "kinds.parquet", np.array(["c/0", "c/9"]))


def test_load_tagger_refuses_what_is_not_a_tagger_in_one_line(tmp_path):
    with pytest.raises(NctoolError, match="not found; train one with `nctool train-tagger"):
        load_tagger(tmp_path / "missing.pt")
    save_checkpoint({"model": {}, "config": {}}, tmp_path / "retrieval.pt")
    with pytest.raises(NctoolError, match="not a word tagger"):
        load_tagger(tmp_path / "retrieval.pt")
    save_checkpoint({"word_tagger": {"vocab": ["red"], "image_size": 16, "state": {}}}, tmp_path / "damaged.pt")
    with pytest.raises(NctoolError, match="damaged.pt: damaged"):
        load_tagger(tmp_path / "damaged.pt")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(NctoolError, match="broken.pt: not loaded"):
        load_tagger(tmp_path / "broken.pt")


def test_train_tagger_refuses_an_empty_caption_in_one_line(tmp_path):
    corpus = colour_corpus(8)
    corpus.loc[3, "caption"] = " "
    write_table(corpus, tmp_path / "corpus.parquet")
    with pytest.raises(NctoolError, match="pair 'c/1#1' has an empty or null caption"):
        train_tagger(tmp_path / "corpus.parquet", tmp_path / "tagger.pt", batch_size=4)
    assert not (tmp_path / "tagger.pt").exists()


@pytest.mark.parametrize("options, message", [
    ({"epochs": 0}, "epochs 0: must be at least 1"),
    ({"lr": 0.0}, "lr 0: must be above 0"),
    ({"min_count": 1000}, "0 attribute words used 1000 times or more"),
    ({"batch_size": 200}, "at least 200 images"),
    ({"image_size": 20}, "image size 20: must be a multiple of 8"),
])
def test_train_tagger_refuses_what_cannot_train(tmp_path, options, message):
    write_table(colour_corpus(8), tmp_path / "corpus.parquet")
    with pytest.raises(NctoolError, match=message):
        train_tagger(tmp_path / "corpus.parquet", tmp_path / "tagger.pt", **{"batch_size": 4, **options})
    assert not (tmp_path / "tagger.pt").exists()


def test_a_tagger_given_as_a_retrieval_checkpoint_is_named_for_what_it_is(colours):
    folder, _ = colours
    with pytest.raises(NctoolError, match="tagger.pt: a word tagger, not a retrieval model; give it to `nctool "
                                          "score` as --tagger"):
        read_checkpoint(folder / "tagger.pt")


def test_the_network_keeps_the_layout_so_it_can_tell_left_from_right():
    network = WordTagger(3, 16).eval()
    left, right = torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16)
    left[..., :8], right[..., 8:] = 1, 1
    with torch.no_grad():  # a pooled head would see the mirrored images alike
        assert not torch.allclose(network(left), network(right))
    with pytest.raises(NctoolError, match="multiple of 8"):
        WordTagger(3, 20)


def test_train_tagger_cli_maps_its_flags(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(nctool.model.tagger, "train_tagger", lambda *args, **kwargs: calls.append((args, kwargs)) or
                        {"out": "t.pt", "images": 10, "words": 3, "train_loss": 0.2, "val_loss": None, "epochs": 2})
    result = invoke("train-tagger", "corpus.parquet", "--out", tmp_path / "t.pt", "--epochs", "2", "--batch-size",
                    "8", "--lr", "0.01", "--min-count", "5", "--image-size", "32", "--seed", "4", "--device", "cpu")
    assert result.exit_code == 0, result.output
    (data, out), kwargs = calls[0]
    assert str(data) == "corpus.parquet" and out == tmp_path / "t.pt"
    assert kwargs == {"epochs": 2, "batch_size": 8, "lr": 0.01, "min_count": 5, "image_size": 32, "seed": 4,
                      "image_root": None, "device": "cpu", "progress": kwargs["progress"]}
    assert "score DATA" in result.output and "--tagger" in result.output


def test_train_tagger_cli_end_to_end(tmp_path):
    write_table(colour_corpus(16), tmp_path / "corpus.parquet")
    result = run_cli("train-tagger", tmp_path / "corpus.parquet", "--out", tmp_path / "tagger.pt", "--epochs", "1",
                     "--batch-size", "8", "--min-count", "2")
    assert result.returncode == 0, result.stderr
    assert "Word tagger" in result.stdout and isinstance(load_tagger(tmp_path / "tagger.pt"), Tagger)
    bad = run_cli("train-tagger", tmp_path / "missing.parquet", "--out", tmp_path / "other.pt")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "missing.parquet" in bad.stderr
