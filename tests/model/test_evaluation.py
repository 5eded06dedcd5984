import io

import pandas as pd
import pytest
import torch
from PIL import Image

from nctool.config import EvalCfg
from nctool.model.batches import PairData
from nctool.model.clip import create_model
from nctool.model.evaluation import evaluate_retrieval
from nctool.model.transforms import preprocess_for

ALL_HIT = {"i2t_r1": 100.0, "i2t_r5": 100.0, "i2t_r10": 100.0, "t2i_r1": 100.0, "t2i_r5": 100.0,
           "t2i_r10": 100.0, "rsum": 600.0, "mr": 100.0}


class LookupModel(torch.nn.Module):
    """Returns its inputs as embeddings: item[:, 0] is the global vector, item[:, 1:] the local tokens."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.local_calls = []

    def encode_image(self, items, local=True):
        self.local_calls.append(local)
        return items[:, 0], items[:, 1:] if local else None

    encode_text = encode_image


class LookupData:
    """The parts of PairData that encode_dataset reads; `pixels` and `tokens` hold LookupModel's items."""

    def __init__(self, image_items, text_items, image_index):
        self.pixels, self.tokens = image_items, text_items
        self.image_index = torch.tensor(image_index)
        self.image_ids = [f"image{i}" for i in range(len(image_items))]
        self.eval_transform = lambda pixels: pixels

    def __len__(self):
        return len(self.tokens)


def evaluate_scores(scores, image_index, rows=None, **options):
    """evaluate_retrieval where the global cosine of image i and caption j is scores[i][j] (one-hot images)."""
    scores = torch.tensor(scores)
    data = LookupData(torch.eye(len(scores))[:, None], scores.T[:, None], image_index)
    cfg = EvalCfg(w_global=1.0, w_local=0.0, batch_size=256)
    return evaluate_retrieval(LookupModel(), data, range(len(data)) if rows is None else rows, cfg, "cpu", **options)


def test_one_caption_each_ranked_by_hand():
    # 12 x 12, own caption scores 0, caption j scores 1 for image i when j < i and -1 when j > i:
    # image i ranks its caption i-th (i higher), caption j ranks its image (11 - j)-th -> ranks 0..11 both ways.
    scores = torch.ones(12, 12).tril(-1) * 2 - 1
    scores.fill_diagonal_(0)
    recalls = evaluate_scores(scores.tolist(), list(range(12)))
    assert recalls == pytest.approx({"i2t_r1": 100 / 12, "i2t_r5": 500 / 12, "i2t_r10": 1000 / 12,
                                     "t2i_r1": 100 / 12, "t2i_r5": 500 / 12, "t2i_r10": 1000 / 12,
                                     "rsum": 3200 / 12, "mr": 3200 / 72})


# 3 images x 6 captions; captions 0, 1 are image 0's, 2, 3 image 1's, 4, 5 image 2's.
SCORES = [[0.2, 0.9, 0.5, 0.1, 0.3, 0.0],
          [0.1, 0.3, 0.6, 0.4, 0.7, 0.2],
          [0.4, 0.8, 0.1, 0.2, 0.3, 0.9]]
OWNER = [0, 0, 1, 1, 2, 2]


def test_several_captions_per_image_any_caption_is_a_hit():
    # i2t: image 0 hits through caption 1 (0.9) though caption 0 ranks 3rd; image 1's best own (0.6) is beaten
    # by caption 4 (0.7); image 2 hits with caption 5. t2i: caption 0 is beaten by image 2 (0.4 > 0.2), caption 4
    # by image 1 (0.7 > 0.3; image 0's tying 0.3 does not count against it); the other four rank first.
    recalls = evaluate_scores(SCORES, OWNER)
    assert recalls == pytest.approx({"i2t_r1": 200 / 3, "i2t_r5": 100.0, "i2t_r10": 100.0, "t2i_r1": 400 / 6,
                                     "t2i_r5": 100.0, "t2i_r10": 100.0, "rsum": 1600 / 3, "mr": 1600 / 18})


@pytest.mark.parametrize("rows", [[2, 3, 4, 5], [5, 3, 4, 2]])
def test_only_the_chosen_rows_are_ranked(rows):
    # images 1, 2 x captions 2..5: image 1 still loses to caption 4 (0.7 > 0.6), caption 4 to image 1;
    # image 0 and its 0.9 for caption 1 are gone, so caption 1 is not a rival any more.
    recalls = evaluate_scores(SCORES, OWNER, rows=rows)
    assert (recalls["i2t_r1"], recalls["t2i_r1"]) == (50.0, 75.0)
    assert recalls["mr"] == pytest.approx((50 + 75 + 400) / 6)


def test_ties_count_for_the_ground_truth():
    assert evaluate_scores([[0.5] * 4] * 2, [0, 0, 1, 1]) == ALL_HIT


@pytest.mark.parametrize("w_global, w_local, i2t_r1", [(1.0, 0.0, 0.0), (0.9, 0.1, 0.0), (0.1, 0.9, 100.0)])
def test_score_weights_global_and_local(w_global, w_local, i2t_r1):
    # the global cosine pairs each image with the other one's caption (1 vs 0), the local similarity (|t . p|
    # for one token and one patch) with its own (1 vs 0): own pair 0.1, other 0.9 at (0.9, 0.1), reversed at (0.1, 0.9).
    eye = torch.eye(2)
    image_items = torch.stack([eye, eye], dim=1)  # image i: global e_i, local patch e_i
    text_items = torch.stack([eye.flip(0), eye], dim=1)  # caption j: global e_(1-j), local token e_j
    model = LookupModel()
    recalls = evaluate_retrieval(model, LookupData(image_items, text_items, [0, 1]), [0, 1],
                                 EvalCfg(w_global=w_global, w_local=w_local, batch_size=8), "cpu")
    assert (recalls["i2t_r1"], recalls["t2i_r1"]) == (i2t_r1, i2t_r1)
    assert model.local_calls == [bool(w_local)] * 2  # locals computed only when they are weighted


def test_progress_names_the_stage_and_follows_the_batch_size():
    calls = []
    data = LookupData(torch.eye(2)[:, None], torch.eye(2)[:, None], [0, 1])
    evaluate_retrieval(LookupModel(), data, [0, 1], EvalCfg(w_global=1.0, w_local=0.0, batch_size=1), "cpu",
                       progress=lambda *args: calls.append(args), stage="val")
    assert calls == [(1, 2, "val: encode images"), (2, 2, "val: encode images"),
                     (1, 2, "val: encode captions"), (2, 2, "val: encode captions")]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("nctool-tiny")
    colours = {"red": (255, 0, 0), "green": (0, 160, 0), "twin": (0, 0, 255), "twin2": (0, 0, 255)}
    rows = []
    for name, colour in colours.items():
        buffer = io.BytesIO()
        Image.new("RGB", (70, 50), colour).save(buffer, format="PNG")
        captions = ("a blue square",) * 2 if name.startswith("twin") else (f"a {name} square", f"all {name}")
        rows += [(name, {"bytes": buffer.getvalue(), "path": None}, caption) for caption in captions]
    frame = pd.DataFrame(rows, columns=["image_id", "image", "caption"]).assign(pair_id=lambda f: f.index)
    return model, PairData(frame, tmp_path_factory.mktemp("images"), preprocess_for(model))


def test_tiny_model_known_answers(tiny_data):
    model, data = tiny_data
    cfg = EvalCfg(w_global=0.9, w_local=0.1, batch_size=1)
    # one image with its own captions only: nothing to confuse it with
    assert evaluate_retrieval(model, data, [0, 1], cfg, "cpu") == ALL_HIT
    # two identical images with identical captions: every score ties, and ties count as hits
    assert evaluate_retrieval(model, data, [4, 5, 6, 7], cfg, "cpu") == ALL_HIT
    # the same inputs give the same recalls, in any row order
    first = evaluate_retrieval(model, data, range(8), cfg, "cpu")
    assert evaluate_retrieval(model, data, range(8), cfg, "cpu") == first
    assert evaluate_retrieval(model, data, [7, 6, 5, 4, 3, 2, 1, 0], cfg, "cpu") == first


def test_no_rows_is_a_one_line_error():
    from nctool.errors import NctoolError

    with pytest.raises(NctoolError, match="^val: no rows to evaluate; give a split with at least one pair$"):
        evaluate_retrieval(LookupModel(), None, [], EvalCfg(1.0, 0.0, 8), "cpu", stage="val")
