import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from cli_helpers import run_cli
from nctool.errors import NctoolError
from nctool.images import load_image, resolve_root
from nctool.ingest import category_of, dataset_name, ingest
from nctool.schema import IMAGE_TYPE, read_table, write_table

# file name -> split in the Karpathy JSON ("restval" is training data)
FILES = {"airport_1.tif": "train", "beach_2.tif": "restval", "00001.png": "val", "baseballfield_3.png": "test"}
SPLIT = {"airport_1.tif": "train", "beach_2.tif": "train", "00001.png": "val", "baseballfield_3.png": "test"}


def _save_image(path: Path, seed: int) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def _captions(filename: str) -> list[str]:
    return [f"{filename} caption {k}" for k in range(2)]


@pytest.fixture
def rsitmd(tmp_path):
    """A tiny RSITMD copy: images/ (TIFF and PNG) and dataset_RSITMD.json; returns (json, pixels by file)."""
    (tmp_path / "RSITMD" / "images").mkdir(parents=True)
    pixels = {f: _save_image(tmp_path / "RSITMD" / "images" / f, i) for i, f in enumerate(FILES)}
    data = {"dataset": "rsitmd", "images": [
        {"filename": f, "split": s, "imgid": i, "sentences": [{"raw": f"  {c} ", "tokens": []} for c in _captions(f)]}
        for i, (f, s) in enumerate(FILES.items())]}
    path = tmp_path / "RSITMD" / "dataset_RSITMD.json"
    path.write_text(json.dumps(data))
    return path, pixels


def _write_rrsitr_csvs(folder: Path) -> list[Path]:
    """The reference CSVs: filename,title with absolute paths from another machine, one file per split."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for split in ("train", "val", "test"):
        rows = [(f"/data/xx/RSITMD/images/{f}", c) for f, s in SPLIT.items() if s == split for c in _captions(f)]
        paths.append(folder / f"rsitmd_{split}.csv")
        pd.DataFrame(rows, columns=["filename", "title"]).to_csv(paths[-1], index=False)
    return paths


def _check_round_trip(df, summary, tmp_path, pixels, dataset="rsitmd"):
    """Write, read back, and compare ids, captions, splits, categories and pixels with the source."""
    out = write_table(df, tmp_path / "out.parquet", image_root=summary["image_root"])
    back = read_table(out)
    root = resolve_root(out)
    expected_ids = [f"{dataset}/{f}#{k}" for f in FILES for k in range(2)]
    assert sorted(back["pair_id"]) == sorted(expected_ids)
    for row in back.itertuples():
        filename = row.image_id.split("/", 1)[1]
        assert row.caption == _captions(filename)[int(row.pair_id[-1])]
        assert row.split == SPLIT[filename]
        assert (row.category if isinstance(row.category, str) else None) == category_of(filename)
        assert np.array_equal(np.asarray(load_image(row.image, root)), pixels[filename])
    return back


@pytest.mark.parametrize("filename, category", [
    ("airport_12.tif", "airport"), ("baseballfield_3.jpg", "baseballfield"), ("00001.jpg", None),
    ("ground_track_field_001.jpg", "ground_track_field"), ("/data/x/denseresidential_7.tif", "denseresidential"),
    ("airport.jpg", None), ("airport_a.jpg", None), ("2019_01.jpg", None)])
def test_category_of(filename, category):
    assert category_of(filename) == category


@pytest.mark.parametrize("path, name", [
    ("dataset_RSITMD.json", "rsitmd"), ("x/rsitmd_train.csv", "rsitmd"), ("rsicd-val.parquet", "rsicd"),
    ("ucm/train.csv", "ucm"), ("nwpu_captions", "nwpu_captions")])
def test_dataset_name(path, name):
    assert dataset_name(Path(path)) == name


def test_karpathy_round_trip(rsitmd, tmp_path):
    path, pixels = rsitmd
    df, summary = ingest([path])
    back = _check_round_trip(df, summary, tmp_path, pixels)
    assert summary["format"] == "karpathy" and summary["datasets"] == ["rsitmd"]
    assert Path(summary["image_root"]) == path.parent / "images"  # the images/ folder beside the JSON
    assert all(Path(im["path"]).is_absolute() and im["bytes"] is None for im in back["image"])
    assert summary["splits"] == {"train": {"pairs": 4, "images": 2}, "val": {"pairs": 2, "images": 1},
                                 "test": {"pairs": 2, "images": 1}}
    assert summary["categories"] == ["airport", "baseballfield", "beach"]
    assert summary["warnings"] == []


def test_rrsitr_csvs_are_remapped_by_file_name(rsitmd, tmp_path):
    _, pixels = rsitmd
    csvs = _write_rrsitr_csvs(tmp_path / "csv")
    images = rsitmd[0].parent / "images"
    for sources in ([tmp_path / "csv"], csvs):  # a folder of CSVs or the CSV paths
        df, summary = ingest(sources, image_root=images, name="rsitmd")
        assert summary["format"] == "rrsitr"
        _check_round_trip(df, summary, tmp_path, pixels)
    # without --image-root the foreign paths stay as they are, and the first one is flagged
    df, summary = ingest(csvs)
    assert df["image"].iloc[0]["path"].startswith("/data/xx/RSITMD/images/")
    assert "pass --image-root" in summary["warnings"][0]


def test_hf_parquet_with_embedded_bytes(rsitmd, tmp_path):
    path, pixels = rsitmd
    structs, captions, extra = [], [], []
    for f in FILES:
        data = (path.parent / "images" / f).read_bytes()
        for c in _captions(f):
            structs.append({"bytes": data, "path": f})
            captions.append(c)
            extra.append(len(extra))
    table = pa.table({"image": pa.array(structs, IMAGE_TYPE), "text": captions, "row_no": extra})
    pq.write_table(table, tmp_path / "rsitmd.parquet")
    df, summary = ingest([tmp_path / "rsitmd.parquet"], split="val")
    assert summary["format"] == "parquet" and set(df["split"]) == {"val"}
    assert list(df["row_no"]) == extra  # unknown columns are carried through
    (path.parent / "images" / "airport_1.tif").unlink()  # bytes are enough
    back = read_table(write_table(df, tmp_path / "out.parquet"))
    assert list(back["caption"]) == captions
    assert set(back["image_id"]) == {f"rsitmd/{f}" for f in FILES}
    first = back.iloc[0]
    assert np.array_equal(np.asarray(load_image(first["image"], tmp_path)), pixels["airport_1.tif"])
    # --caption-column picks another column
    pq.write_table(table.rename_columns(["image", "desc", "row_no"]), tmp_path / "other.parquet")
    df, _ = ingest([tmp_path / "other.parquet"], caption_column="desc")
    assert list(df["caption"]) == captions and set(df["split"]) == {"train"}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_folder_with_caption_table(tmp_path, suffix):
    folder = tmp_path / "ucm"
    folder.mkdir()
    pixels = {f: _save_image(folder / f, i) for i, f in enumerate(FILES)}
    rows = [{"file": f, "caption": c, "split": SPLIT[f]} for f in FILES for c in _captions(f)]
    if suffix == ".csv":
        pd.DataFrame(rows).to_csv(folder / "captions.csv", index=False)
    else:
        (folder / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    df, summary = ingest([folder])  # the folder names the dataset and holds the images
    assert summary["format"] == "folder"
    _check_round_trip(df, summary, tmp_path, pixels, dataset="ucm")


def test_embed_makes_a_self_contained_file(rsitmd, tmp_path):
    path, pixels = rsitmd
    progress = []
    df, summary = ingest([path], embed=True, progress=lambda done, total, what: progress.append(what))
    assert "embedding images" in progress
    assert all(im["bytes"] and im["path"] in FILES for im in df["image"])
    for f in FILES:
        (path.parent / "images" / f).unlink()
    _check_round_trip(df, summary, tmp_path, pixels)


def test_empty_captions_fail_unless_dropped(rsitmd):
    path, _ = rsitmd
    data = json.loads(path.read_text())
    data["images"][1]["sentences"][1]["raw"] = "   "
    path.write_text(json.dumps(data))
    with pytest.raises(NctoolError, match=r"images\[1\] \(beach_2\.tif\) sentence 1: empty caption; .*--drop-empty"):
        ingest([path])
    df, summary = ingest([path], drop_empty=True)
    assert summary["dropped_empty_captions"] == 1 and len(df) == 7
    assert "rsitmd/beach_2.tif#1" not in set(df["pair_id"])  # ids keep their source position


def test_check_images_fails_with_one_summary_or_skips(rsitmd):
    path, _ = rsitmd
    (path.parent / "images" / "beach_2.tif").unlink()
    (path.parent / "images" / "00001.png").write_bytes(b"broken")
    with pytest.raises(NctoolError) as err:
        ingest([path], check_images=True)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("2 of 4 images cannot be read (1 not found, 1 corrupt)")
    assert "beach_2.tif" in message and "00001.png" in message and "--skip-bad-images" in message
    df, summary = ingest([path], skip_bad_images=True)
    assert set(df["image_id"]) == {"rsitmd/airport_1.tif", "rsitmd/baseballfield_3.png"}
    assert (summary["missing_images"], summary["corrupt_images"], summary["dropped_bad_image_pairs"]) == (1, 1, 4)


def test_missing_image_without_check_is_reported_when_needed(rsitmd, tmp_path):
    path, _ = rsitmd
    (path.parent / "images" / "airport_1.tif").unlink()
    df, summary = ingest([path])
    assert "image not found" in summary["warnings"][0]
    with pytest.raises(NctoolError, match=r"airport_1\.tif: image not found; pass --image-root"):
        ingest([path], embed=True)


def test_error_messages(rsitmd, tmp_path):
    path, _ = rsitmd
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "other.json").write_text(json.dumps({"annotations": []}))
    (tmp_path / "empty.json").write_text(json.dumps({"images": []}))
    (tmp_path / "dev.json").write_text(json.dumps({"images": [{"filename": "a_1.tif", "split": "dev",
                                                                "sentences": [{"raw": "c"}]}]}))
    pd.DataFrame({"path": ["a.jpg"], "text": ["c"]}).to_csv(tmp_path / "bad.csv", index=False)
    cases = [
        (dict(sources=[tmp_path / "nope.json"]), r"nope\.json: not found"),
        (dict(sources=[tmp_path / "notes.txt"]), r"notes\.txt: unknown format '\.txt'"),
        (dict(sources=[path], fmt="coco"), r"--format coco: unknown format"),
        (dict(sources=[tmp_path / "other.json"]), r"other\.json: no 'images' list"),
        (dict(sources=[tmp_path / "empty.json"]), r"empty\.json: no rows"),
        (dict(sources=[tmp_path / "bad.csv"]),
         r"bad\.csv: missing column\(s\) file, caption \(columns found: path, text\)"),
        (dict(sources=[path, tmp_path / "bad.csv"]), r"tables of several formats \(folder, karpathy\)"),
        (dict(sources=[path], image_root=tmp_path / "nowhere"), r"--image-root .*nowhere: folder not found"),
        (dict(sources=[path], split="dev"), r"--split dev: unknown split"),
        (dict(sources=[tmp_path / "dev.json"]), r"dev\.json: images\[0\] \(a_1\.tif\) sentence 0: unknown split 'dev'"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(NctoolError, match=pattern):
            ingest(**kwargs)


def test_duplicate_ids_are_refused(rsitmd, tmp_path):
    path, _ = rsitmd
    csvs = _write_rrsitr_csvs(tmp_path / "csv")
    leaked = pd.read_csv(csvs[0]).head(1)  # a training image also in the test file
    pd.concat([pd.read_csv(csvs[2]), leaked]).to_csv(csvs[2], index=False)
    with pytest.raises(NctoolError, match=r"duplicate ids: image 'rsitmd/airport_1\.tif' is in splits test, train"):
        ingest(csvs, image_root=path.parent / "images")
    # two files behind one image id (absolute paths keep only their file name)
    pd.DataFrame({"file": [f"{tmp_path}/a/x_1.png", f"{tmp_path}/b/x_1.png"], "caption": ["c", "d"]}).to_csv(
        tmp_path / "captions.csv", index=False)
    with pytest.raises(NctoolError, match=r"image id '.*/x_1\.png' names several files .*/a/x_1\.png, .*/b/x_1\.png"):
        ingest([tmp_path / "captions.csv"])
    df, _ = ingest([path])
    df.loc[1, "pair_id"] = df.loc[0, "pair_id"]
    write_table(df, tmp_path / "dup.parquet")
    with pytest.raises(NctoolError, match=r"pair_id 'rsitmd/airport_1\.tif#0' appears more than once"):
        ingest([tmp_path / "dup.parquet"])


def test_cli_ingest_end_to_end(rsitmd, tmp_path):
    path, pixels = rsitmd
    out = tmp_path / "rsitmd.parquet"
    result = run_cli("ingest", path, "--out", out, "--check-images")
    assert result.returncode == 0, result.stderr
    assert "wrote 8 pairs" in result.stdout and "images checked: 0 not found, 0 corrupt" in result.stdout
    back = read_table(out)
    assert len(back) == 8 and resolve_root(out) == path.parent / "images"


def test_cli_error_is_one_line_and_writes_nothing(rsitmd, tmp_path):
    path, _ = rsitmd
    (path.parent / "images" / "beach_2.tif").write_bytes(b"broken")
    out = tmp_path / "rsitmd.parquet"
    result = run_cli("ingest", path, "--out", out, "--check-images")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]  # the rest is the progress bar
    assert len(errors) == 1 and errors[0].startswith("error: 1 of 4 images cannot be read (0 not found, 1 corrupt)")
    assert not out.exists() and list(tmp_path.glob("*.parquet*")) == []
