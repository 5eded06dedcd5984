import io
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nctool.data import images
from nctool.data.images import check_images, load_image, resolve_root
from nctool.errors import NctoolError
from nctool.schema import write_table


def _pixels(seed: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).convert(mode)


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_load_from_bytes_relative_and_absolute_paths(tmp_path):
    img = _pixels(0)
    img.save(tmp_path / "a_1.tif")  # RSITMD ships TIFF
    expected = np.asarray(img)
    for image in ({"bytes": _png_bytes(img), "path": None},
                  {"bytes": None, "path": "a_1.tif"},
                  {"bytes": None, "path": str(tmp_path / "a_1.tif")}):
        loaded = load_image(image, tmp_path)
        assert loaded.mode == "RGB" and np.array_equal(np.asarray(loaded), expected)


def test_bytes_win_over_path_and_other_modes_become_rgb(tmp_path):
    gray = _pixels(1, "L")
    loaded = load_image({"bytes": _png_bytes(gray), "path": "does/not/exist.png"}, tmp_path)
    assert loaded.mode == "RGB" and np.array_equal(np.asarray(loaded)[..., 0], np.asarray(gray))


def test_missing_file_names_it_and_suggests_image_root(tmp_path):
    with pytest.raises(NctoolError, match=r"gone\.tif: image not found; pass --image-root"):
        load_image({"bytes": None, "path": "gone.tif"}, tmp_path)
    with pytest.raises(NctoolError, match="neither bytes nor path"):
        load_image(None, tmp_path)


def test_corrupt_file_and_bytes_name_the_image(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not an image at all")
    with pytest.raises(NctoolError, match=r"bad\.jpg: corrupt or not an image \(UnidentifiedImageError\)"):
        load_image({"bytes": None, "path": "bad.jpg"}, tmp_path)
    truncated = _png_bytes(_pixels(2))[:60]
    with pytest.raises(NctoolError, match=r"x\.png: corrupt or not an image"):
        load_image({"bytes": truncated, "path": "x.png"}, tmp_path)


def test_check_images_reports_each_problem_and_decodes_each_image_once(tmp_path, monkeypatch):
    _pixels(3).save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"junk")
    rows = [("d/ok#0", {"bytes": None, "path": "ok.png"}), ("d/ok#1", {"bytes": None, "path": "ok.png"}),
            ("d/bad#0", {"bytes": None, "path": "bad.png"}), ("d/bad#1", {"bytes": None, "path": "bad.png"}),
            ("d/gone#0", {"bytes": None, "path": "gone.png"})]
    calls, seen = [], []
    real = images.load_image
    monkeypatch.setattr(images, "load_image", lambda image, root: calls.append(image["path"]) or real(image, root))
    problems = check_images(iter(rows), tmp_path, progress=lambda done, total, what: seen.append((done, total)))
    assert sorted(calls) == ["bad.png", "gone.png", "ok.png"]
    assert [what for what, _ in problems] == ["d/bad#0", "d/bad#1", "d/gone#0"]
    assert problems[0][1] == f"{images.CORRUPT}: {tmp_path / 'bad.png'}"
    assert problems[2][1] == f"{images.MISSING}: {tmp_path / 'gone.png'}"
    assert seen[-1] == (5, 5)


def test_resolve_root_prefers_option_then_metadata_then_folder(tmp_path):
    df = pd.DataFrame({"pair_id": ["d/a#0"], "image_id": ["d/a"], "image": [{"bytes": None, "path": "a.png"}],
                       "caption": ["c"], "split": ["train"]})
    plain = write_table(df, tmp_path / "plain.parquet")
    rooted = write_table(df, tmp_path / "rooted.parquet", image_root=tmp_path / "imgs")
    assert resolve_root(plain) == tmp_path.resolve()
    assert resolve_root(rooted) == (tmp_path / "imgs").resolve()
    assert resolve_root(rooted, tmp_path / "elsewhere") == tmp_path / "elsewhere"


def test_pil_warnings_do_not_reach_the_user(tmp_path, monkeypatch):
    palette = Image.new("P", (4, 4))
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.save(tmp_path / "p.png", transparency=bytes([0, 128]))  # PIL warns when converting it to RGB
    _pixels(4).save(tmp_path / "big.png")  # 48 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 30)  # PIL warns above this, refuses above twice this
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_image({"bytes": None, "path": "p.png"}, tmp_path).mode == "RGB"
        with pytest.raises(NctoolError, match=r"big\.png: corrupt or not an image \(DecompressionBombWarning\)"):
            load_image({"bytes": None, "path": "big.png"}, tmp_path)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)
        with pytest.raises(NctoolError, match=r"big\.png: corrupt or not an image \(DecompressionBombError\)"):
            load_image({"bytes": None, "path": "big.png"}, tmp_path)
    assert [str(w.message) for w in caught] == []
