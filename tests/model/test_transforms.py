import pytest
import torch

from nctool.model.clip import create_model
from nctool.model.transforms import preprocess_for


@pytest.fixture(scope="module")
def preprocess():
    return preprocess_for(create_model("nctool-tiny"))


def test_eval_transform_resizes_crops_and_normalises(preprocess):
    transform = preprocess.eval
    square = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    torch.testing.assert_close(transform(square), (square / 255 - transform.mean) / transform.std)
    assert transform.mean.flatten().tolist() == pytest.approx([0.48145466, 0.4578275, 0.40821073])  # CLIP's
    wide = torch.randint(0, 256, (5, 3, 80, 120), dtype=torch.uint8)
    out = transform(wide)
    assert out.shape == (5, 3, 64, 64) and out.dtype == torch.float32


def test_train_transform_draws_a_crop_per_image_from_the_generator(preprocess):
    transform = preprocess.train
    image = torch.randint(0, 256, (3, 72, 72), dtype=torch.uint8)
    batch = image.expand(8, 3, 72, 72)
    first = transform(batch, generator=torch.Generator().manual_seed(0))
    assert first.shape == (8, 3, 64, 64) and first.dtype == torch.float32
    torch.testing.assert_close(transform(batch, generator=torch.Generator().manual_seed(0)), first)
    assert not torch.equal(first[0], first[1])  # each image gets its own crop
    assert transform(image).shape == (3, 64, 64)


def test_captions_in_any_script_get_their_own_tokens(preprocess):
    tokens = preprocess.tokenizer(["機場 跑道", "مطار", "airport runway", "café near the río"])
    start_end = 2  # start- and end-of-text
    lengths = (tokens != 0).sum(1)
    assert (lengths > start_end).all()  # no caption is reduced to an empty token list
    assert len({tuple(row.tolist()) for row in tokens}) == 4
    assert not torch.equal(tokens[3], preprocess.tokenizer(["caf near the ro"])[0])
