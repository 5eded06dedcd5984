"""The demo data generator (nctool/data/synth/) and `nctool synth`."""

from __future__ import annotations

import hashlib
import io
import re

import pandas as pd
import pytest
from cli_helpers import invoke, run_cli
from PIL import Image

from nctool.data.synth import CAPTIONS_PER_IMAGE, CATEGORIES, generate, synthesize, true_of_image
from nctool.data.synth.captions import could_write, fact
from nctool.errors import NctoolError
from nctool.schema import read_table, write_table

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


def _digest(df: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for column in ("pair_id", "caption", "split", "category"):
        digest.update("\n".join(df[column]).encode() + b"\0")
    for record in df["image"]:
        digest.update(record["bytes"])
    return digest.hexdigest()


@pytest.mark.parametrize("n_images, size, seed, expected", [
    (60, 64, 0, "eee13be6877075133bd4cac92440538c3cd239eae42e84e97c617c7073ec7c09"),
    (40, 32, 7, "c7cd7a124c7c74fe5f3069815b8b87733777435059407d35624f2d6686157079"),
    (30, 128, 3, "431f7d7e784de312d236c5ab389166c3b7c1ce09b2d8465ae1cd29099a8d0794"),
])
def test_demo_data_is_pinned(n_images, size, seed, expected):
    # Benchmarks and docs quote numbers measured on this data: a change to any scene, caption or
    # split must be deliberate (update these digests, and say so), never a side effect.
    assert _digest(generate(n_images, size=size, seed=seed)) == expected


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


def test_could_write_inverts_the_caption_writer_on_hand_made_facts():
    facts = [fact(["two planes", "two white planes"], ["parked on the left"]),
             fact(["a runway"], ["crossing the airport"], plural=False)]
    assert could_write("an airport with two white planes parked on the left.", facts, ("airport",))
    assert could_write("in the airport, two planes are parked on the left and a runway is crossing the airport.",
                       facts, ("airport",))
    assert not could_write("an airport with three white planes parked on the left.", facts, ("airport",))  # count
    assert not could_write("an airport with two white planes parked on the right.", facts, ("airport",))  # place
    assert not could_write("a harbor with two white planes parked on the left.", facts, ("airport",))  # scene
    assert not could_write("an airport with two planes parked on the left and two white planes parked on the left.",
                           facts, ("airport",))  # one fact stated twice: the writer never does that


def test_every_caption_is_true_of_its_own_image_and_not_of_another_class(demo):
    for index in range(2 * len(CATEGORIES)):
        captions = demo.loc[demo["image_id"] == f"synth/{index:06d}", "caption"]
        assert all(true_of_image(c, index) for c in captions)
        assert not any(true_of_image(c, index + 1) for c in captions)


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
    assert demo["pair_id"].is_unique and len(demo) == CAPTIONS_PER_IMAGE * 240
    assert (demo["pair_id"].str.split("#").str[0] == demo["image_id"]).all()
    assert demo["image_id"].iloc[5] == "synth/000001" and demo["pair_id"].iloc[6] == "synth/000001#1"
    per_image = demo.groupby("image_id")
    assert (per_image["caption"].nunique() == CAPTIONS_PER_IMAGE).all()
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
    assert df["split"].value_counts().to_dict() == {"train": 120, "val": 60, "test": 20}
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


def test_synthesize_writes_the_file_and_sums_it_up(tmp_path):
    dest = tmp_path / "data" / "demo.parquet"
    summary = synthesize(dest, images=24, size=32, seed=1, splits=(0.5, 0.25, 0.25))
    df = read_table(dest)
    expected = generate(24, size=32, seed=1, splits=(0.5, 0.25, 0.25))
    pd.testing.assert_frame_equal(df.drop(columns="image"), expected.drop(columns="image"))
    assert summary["path"] == dest and summary["file_size"] == dest.stat().st_size
    per_image = expected.drop_duplicates("image_id")
    assert summary["splits"] == [
        *({"split": s, "images": int((per_image["split"] == s).sum()), "pairs": int((expected["split"] == s).sum()),
           "classes": per_image.loc[per_image["split"] == s, "category"].nunique()} for s in ("train", "val", "test")),
        {"split": "total", "images": 24, "pairs": 24 * CAPTIONS_PER_IMAGE, "classes": 24},
    ]
    assert [row["images"] for row in summary["splits"]] == [12, 6, 6, 24]


@pytest.mark.parametrize("kwargs, message", [
    ({"images": 3}, "at least 10"),
    ({"size": 8}, "32 to 256"),
    ({"splits": (0.2, 0.7, 0.5)}, "add up to 1"),
])
def test_synthesize_refuses_bad_options_before_writing(tmp_path, kwargs, message):
    dest = tmp_path / "demo.parquet"
    with pytest.raises(NctoolError, match=message):
        synthesize(dest, **{"images": 20, "size": 32, "seed": 0, "splits": (0.8, 0.1, 0.1), **kwargs})
    assert list(tmp_path.iterdir()) == []


def test_synthesize_refuses_a_folder(tmp_path):
    with pytest.raises(NctoolError, match="is a folder"):
        synthesize(tmp_path, images=20, size=32, seed=0, splits=(0.8, 0.1, 0.1))
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_replaced_only_with_overwrite(tmp_path):
    dest = tmp_path / "mine.parquet"
    dest.write_bytes(b"someone's data")
    result = invoke("synth", "--out", dest, "--images", 10, "--size", 32)
    assert isinstance(result.exception, NctoolError), result.output
    assert re.search(r"mine\.parquet: already exists; pass --overwrite to replace it", str(result.exception))
    assert dest.read_bytes() == b"someone's data"
    assert invoke("synth", "--out", dest, "--images", 10, "--size", 32, "--overwrite").exit_code == 0
    assert len(read_table(dest)) == 10 * CAPTIONS_PER_IMAGE


def test_cli_passes_each_flag_to_synthesize(tmp_path, monkeypatch):
    calls = []

    def fake_synthesize(out, **kwargs):
        calls.append((out, kwargs))
        return {"path": out, "file_size": 2048,
                "splits": [{"split": "train", "images": 10, "pairs": 50, "classes": 10},
                           {"split": "total", "images": 10, "pairs": 50, "classes": 10}]}

    monkeypatch.setattr("nctool.cli.synth.synthesize", fake_synthesize)
    dest = tmp_path / "demo.parquet"
    result = invoke("synth", "--out", dest, "--images", 50, "--size", 48, "--seed", 9, "--val", 0.25, "--test", 0.125)
    assert result.exit_code == 0, result.output
    (out, kwargs), = calls
    progress = kwargs.pop("progress")
    assert out == dest and callable(progress)
    assert kwargs == {"images": 50, "size": 48, "seed": 9, "splits": (0.625, 0.25, 0.125), "overwrite": False}
    assert f"wrote 50 pairs to {dest} (2 kB)" in result.output

    calls.clear()
    assert invoke("synth", "--out", dest, "--overwrite").exit_code == 0
    (_, kwargs), = calls
    del kwargs["progress"]
    assert kwargs == {"images": 1000, "size": 64, "seed": 0, "splits": (0.8, 0.1, 0.1), "overwrite": True}


def test_cli_writes_the_file(tmp_path):
    dest = tmp_path / "data" / "demo.parquet"
    result = run_cli("synth", "--images", "24", "--size", "32", "--seed", "1", "--out", dest)
    assert result.returncode == 0, result.stderr
    df = read_table(dest)
    assert len(df) == 24 * CAPTIONS_PER_IMAGE and df["category"].nunique() == 24
    assert "total" in result.stdout and f"wrote {24 * CAPTIONS_PER_IMAGE} pairs to {dest}" in result.stdout
