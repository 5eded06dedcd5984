import io
import os

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import nctool.model.batches
from nctool.errors import NctoolError
from nctool.metrics import retrieval_recalls
from nctool.model.batches import DECODE_WORKERS_VARIABLE, PairData, decode_workers, encode_dataset
from nctool.model.clip import create_model, pair_scores
from nctool.model.transforms import preprocess_for


def png(size, color, mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("nctool-tiny")


@pytest.fixture(scope="module")
def preprocess(model):
    return preprocess_for(model)


@pytest.fixture
def frame(tmp_path):
    """Three images, two captions each; the last one is a file relative to the image root."""
    Image.new("RGB", (100, 100), (0, 0, 255)).save(tmp_path / "blue.png")
    images = {"red": {"bytes": png((80, 60), (255, 0, 0)), "path": None},
              "grey": {"bytes": png((64, 64), 128, mode="L"), "path": "grey.png"},
              "blue": {"bytes": None, "path": "blue.png"}}
    rows = [(name, caption) for name in images for caption in (f"a {name} square", f"all {name}")]
    return pd.DataFrame({"pair_id": [f"{name}#{i}" for i, (name, _) in enumerate(rows)],
                         "image_id": [name for name, _ in rows],
                         "image": [images[name] for name, _ in rows],
                         "caption": [caption for _, caption in rows],
                         "split": "test"})


def test_cache_decodes_each_image_once(monkeypatch, frame, tmp_path, model, preprocess):
    decoded, calls = [], []
    real_load_image = nctool.model.batches.load_image

    def counting_load_image(image, root):
        decoded.append(image["path"])
        return real_load_image(image, root)

    monkeypatch.setattr(nctool.model.batches, "load_image", counting_load_image)
    data = PairData(frame, tmp_path, preprocess, progress=lambda *args: calls.append(args))
    assert len(decoded) == 3
    assert data.image_ids == ["red", "grey", "blue"]
    assert data.pixels.shape == (3, 3, 64, 64) and data.pixels.dtype == torch.uint8
    assert data.image_index.tolist() == [0, 0, 1, 1, 2, 2]
    assert data.tokens.shape == (6, 32) and len(data) == 6
    assert calls[-1] == (3, 3, "decode images")
    # the pixels are the images' own colours (grey became RGB)
    assert data.pixels[0, :, 30, 30].tolist() == [255, 0, 0]
    assert data.pixels[1, :, 30, 30].tolist() == [128, 128, 128]
    assert data.pixels[2, :, 30, 30].tolist() == [0, 0, 255]


def test_cache_size_can_exceed_the_model_input(frame, tmp_path, model, preprocess):
    data = PairData(frame, tmp_path, preprocess, cache_size=72)
    assert data.pixels.shape == (3, 3, 72, 72)
    for train in (True, False):
        images, _ = data.batch([0, 5], train=train, generator=torch.Generator().manual_seed(0))
        assert images.shape == (2, 3, 64, 64)


def test_missing_image_names_the_file(frame, tmp_path, model, preprocess):
    with pytest.raises(NctoolError, match="blue.png"):
        PairData(frame, tmp_path / "elsewhere", preprocess)


def test_a_batch_is_its_rows_images_and_tokens(frame, tmp_path, model, preprocess):
    data = PairData(frame, tmp_path, preprocess)
    rows = torch.tensor([5, 0])
    images, tokens = data.batch(rows)
    assert images.shape == (2, 3, 64, 64) and images.dtype == torch.float32
    assert torch.equal(tokens, data.tokens[rows])
    torch.testing.assert_close(images, data.eval_transform(data.pixels[data.image_index[rows]]))


def test_train_batches_crop_reproducibly(frame, tmp_path, model, preprocess):
    data = PairData(frame, tmp_path, preprocess)
    crops = [data.batch(range(4), train=True, generator=torch.Generator().manual_seed(0))[0] for _ in range(2)]
    torch.testing.assert_close(crops[0], crops[1])


def test_encode_dataset_embeds_the_images_of_the_chosen_rows(frame, tmp_path, model, preprocess):
    data = PairData(frame, tmp_path, preprocess)
    model.train()
    encoded = encode_dataset(model, data, rows=[2, 3, 4, 5], batch_size=3)
    assert model.training  # mode restored
    assert encoded.image_ids == ["grey", "blue"]
    assert encoded.caption_image_index.tolist() == [0, 0, 1, 1]
    assert encoded.image_global.shape == (2, 128) and encoded.image_local.shape == (2, 64, 128)
    assert encoded.text_global.shape == (4, 128) and encoded.text_local.shape == (4, 32, 128)
    assert encoded.rows.tolist() == [2, 3, 4, 5]
    model.eval()
    with torch.no_grad():
        expected_image = model.encode_image(data.eval_transform(data.pixels[1:3]))[0]
        expected_text = model.encode_text(data.tokens[2:6])[0]
    torch.testing.assert_close(encoded.image_global, expected_image)
    torch.testing.assert_close(encoded.text_global, expected_text)
    scores = pair_scores(encoded.image_global, encoded.image_local, encoded.text_global,
                         encoded.text_local)
    assert set(retrieval_recalls(scores, encoded.caption_image_index)) >= {"i2t_r1", "t2i_r1", "mr"}


def test_encode_dataset_global_only(frame, tmp_path, model, preprocess):
    encoded = encode_dataset(model, PairData(frame, tmp_path, preprocess), local=False)
    assert encoded.image_local is None and encoded.text_local is None
    assert encoded.text_global.shape == (6, 128)


def noise_frame(tmp_path, count: int = 12) -> pd.DataFrame:
    """`count` images of random pixels and odd sizes (half embedded JPEG bytes, half PNG files), one caption each."""
    rng = np.random.default_rng(0)
    images = []
    for i in range(count):
        picture = Image.fromarray(rng.integers(0, 256, (40 + 7 * i, 90 - 3 * i, 3), dtype=np.uint8))
        if i % 2:
            picture.save(tmp_path / f"{i}.png")
            images.append({"bytes": None, "path": f"{i}.png"})
        else:
            buffer = io.BytesIO()
            picture.save(buffer, format="JPEG")
            images.append({"bytes": buffer.getvalue(), "path": None})
    return pd.DataFrame({"pair_id": [f"p{i}" for i in range(count)], "image_id": [f"i{i}" for i in range(count)],
                         "image": images, "caption": [f"caption {i}" for i in range(count)], "split": "train"})


def test_parallel_decoding_gives_the_serial_pixels(monkeypatch, tmp_path, preprocess):
    pools = []
    real_pool = nctool.model.batches.ThreadPoolExecutor
    monkeypatch.setattr(nctool.model.batches, "ThreadPoolExecutor", lambda max_workers: pools.append(max_workers)
                        or real_pool(max_workers))
    frame = noise_frame(tmp_path)
    serial = PairData(frame, tmp_path, preprocess, workers=1)
    parallel = PairData(frame, tmp_path, preprocess, workers=4)
    assert pools == [1, 4]
    assert torch.equal(serial.pixels, parallel.pixels)
    assert torch.equal(serial.tokens, parallel.tokens)


def test_decode_workers_default_environment_and_argument(monkeypatch):
    monkeypatch.delenv(DECODE_WORKERS_VARIABLE, raising=False)
    assert decode_workers() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(DECODE_WORKERS_VARIABLE, "3")
    assert decode_workers() == 3
    assert decode_workers(5) == 5  # the argument wins over the variable
    for bad in ("0", "two", ""):
        monkeypatch.setenv(DECODE_WORKERS_VARIABLE, bad)
        with pytest.raises(NctoolError, match=f"{DECODE_WORKERS_VARIABLE} '{bad}': must be a whole number"):
            decode_workers()
    with pytest.raises(NctoolError, match="decode workers 0: must be a whole number"):
        decode_workers(0)
