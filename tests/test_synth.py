"""The demo data generator (nctool/synth.py) and `nctool synth`."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from PIL import Image

from cli_helpers import run_cli
from nctool.errors import NctoolError
from nctool.schema import read_table, write_table
from nctool.synth import CATEGORIES, generate

# A word that every caption of the class contains (the scene nouns are built around it).
STEMS = {
    "airport": "airport|airfield", "baseball_field": "baseball|ballpark", "beach": "beach", "bridge": "bridge|river",
    "center": "center", "church": "church", "dense_residential": "residential", "desert": "desert",
    "farmland": "farm", "forest": "forest|woodland", "industrial": "industrial|factory",
    "intersection": "intersection|junction", "meadow": "meadow|grassland", "mountain": "mountain",
    "parking": "parking|car park", "playground": "playground|sports ground", "pond": "pond|lake",
    "port": "port|harbor", "river": "river", "snowfield": "snow", "sparse_residential": "residential",
    "stadium": "stadium|venue", "storage_tanks": "tank|depot", "tennis_court": "tennis",
}


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return generate(240, seed=0)


def test_same_seed_same_bytes_other_seed_differs():
    a, b, c = generate(24, seed=7), generate(24, seed=7), generate(24, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert [r["bytes"] for r in a["image"]] == [r["bytes"] for r in b["image"]]
    assert not set(r["bytes"] for r in a["image"]) & set(r["bytes"] for r in c["image"])
    assert (a["caption"] != c["caption"]).mean() > 0.9


def test_images_do_not_depend_on_dataset_size():
    small, large = generate(12, seed=3), generate(30, seed=3)
    cols = ["pair_id", "image_id", "caption", "category"]
    pd.testing.assert_frame_equal(small[cols], large[cols].iloc[:len(small)])
    assert small["image"].tolist() == large["image"].iloc[:len(small)].tolist()


def test_schema_round_trip(demo, tmp_path):
    dest = write_table(demo, tmp_path / "demo.parquet")
    back = read_table(dest)
    assert list(back.columns) == ["pair_id", "image_id", "image", "caption", "split", "category"]
    pd.testing.assert_frame_equal(back.drop(columns="image"), demo.drop(columns="image"))
    assert [r["bytes"] for r in back["image"]] == [r["bytes"] for r in demo["image"]]
    assert back["image"].iloc[0]["path"] is None


def test_ids_classes_and_captions(demo):
    assert len(CATEGORIES) >= 20 and demo["category"].nunique() >= 20
    assert set(demo["category"]) <= set(CATEGORIES)
    assert all(re.fullmatch(r"[a-z_]+", c) for c in CATEGORIES)
    assert demo["pair_id"].is_unique and len(demo) == 5 * 240
    assert (demo["pair_id"].str.split("#").str[0] == demo["image_id"]).all()
    assert demo["image_id"].iloc[5] == "synth/000001" and demo["pair_id"].iloc[6] == "synth/000001#1"
    per_image = demo.groupby("image_id")
    assert (per_image["caption"].nunique() == 5).all()
    assert (per_image["category"].nunique() == 1).all() and (per_image["split"].nunique() == 1).all()
    for category, caption in zip(demo["category"], demo["caption"]):
        assert re.search(STEMS[category], caption), (category, caption)
    # within a class, captions mostly tell images apart: few are written for more than one image
    assert demo["caption"].duplicated(keep=False).mean() < 0.15


@pytest.mark.parametrize("size", [32, 64, 128])
def test_images_decode_to_requested_size(size):
    df = generate(24, size=size, seed=1)
    for record in df["image"].iloc[::5]:
        image = Image.open(io.BytesIO(record["bytes"]))
        assert image.format == "PNG" and image.mode == "RGB" and image.size == (size, size)


def test_split_fractions_are_honoured():
    df = generate(200, seed=2, splits=(0.6, 0.3, 0.1)).drop_duplicates("image_id")
    counts = df["split"].value_counts()
    assert abs(counts["train"] - 120) <= 1 and abs(counts["val"] - 60) <= 1 and abs(counts["test"] - 20) <= 1
    assert df.loc[df["split"] == "val", "category"].nunique() == len(CATEGORIES)  # spread over the classes


@pytest.mark.parametrize("kwargs, message", [
    ({"n_images": 3}, "at least 10"),
    ({"size": 16}, "32 to 256"),
    ({"size": 300}, "32 to 256"),
    ({"splits": (0.9, 0.2, 0.1)}, "add up to 1"),
    ({"splits": (0.0, 0.5, 0.5)}, "leave some for train"),
])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(NctoolError, match=message):
        generate(**{"n_images": 20, **kwargs})


def test_progress_is_reported():
    calls = []
    generate(70, progress=lambda done, total, what: calls.append((done, total, what)))
    assert calls[-1] == (70, 70, "synth") and len(calls) >= 2


def test_cli_writes_the_file(tmp_path):
    dest = tmp_path / "data" / "demo.parquet"
    result = run_cli("synth", "--images", "24", "--size", "32", "--seed", "1", "--out", dest)
    assert result.returncode == 0, result.stderr
    df = read_table(dest)
    assert len(df) == 120 and df["category"].nunique() == 24
    assert "demo.parquet" in result.stdout and "total" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--size", "8"], "size: 8 px"),
    (["--images", "2"], "images: 2"),
    (["--val", "0.7", "--test", "0.5"], "splits:"),
])
def test_cli_bad_option_is_one_line(tmp_path, args, message):
    result = run_cli("synth", *args, "--out", tmp_path / "demo.parquet")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and message in result.stderr
    assert not (tmp_path / "demo.parquet").exists()
