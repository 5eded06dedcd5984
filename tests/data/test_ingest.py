import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_helpers import invoke, run_cli
from PIL import Image

import nctool.cli.ingest
from nctool.data.images import CORRUPT, load_image, resolve_root
from nctool.data.ingest import FORMAT_CHOICES, category_of, dataset_name, ingest
from nctool.errors import NctoolError
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


def _ingest(sources, tmp_path, **kwargs):
    """ingest() into tmp_path/out.parquet; returns the file as read back and the summary."""
    summary = ingest(sources, out=tmp_path / "out.parquet", **kwargs)
    assert summary["out"] == str(tmp_path / "out.parquet")
    return read_table(tmp_path / "out.parquet"), summary


def _check_round_trip(back, tmp_path, pixels, dataset="rsitmd", image_root=None):
    """Compare the written file's ids, captions, splits, categories and pixels with the source."""
    root = resolve_root(tmp_path / "out.parquet", image_root)
    expected_ids = [f"{dataset}/{f}#{k}" for f in FILES for k in range(2)]
    assert sorted(back["pair_id"]) == sorted(expected_ids)
    for row in back.itertuples():
        filename = row.image_id.split("/", 1)[1]
        assert row.caption == _captions(filename)[int(row.pair_id[-1])]
        assert row.split == SPLIT[filename]
        assert (row.category if isinstance(row.category, str) else None) == category_of(filename)
        assert np.array_equal(np.asarray(load_image(row.image, root)), pixels[filename])


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
    back, summary = _ingest([path], tmp_path)
    _check_round_trip(back, tmp_path, pixels)
    assert summary["format"] == "karpathy" and summary["datasets"] == ["rsitmd"]
    assert Path(summary["image_root"]) == path.parent / "images"  # the images/ folder beside the JSON
    # stored relative to the root (in the file's metadata), so a moved folder needs only --image-root
    assert resolve_root(tmp_path / "out.parquet") == path.parent / "images"
    assert sorted(im["path"] for im in back["image"]) == sorted(f for f in FILES for _ in range(2))
    assert all(im["bytes"] is None for im in back["image"])
    assert summary["splits"] == {"train": {"pairs": 4, "images": 2}, "val": {"pairs": 2, "images": 1},
                                 "test": {"pairs": 2, "images": 1}}
    assert summary["categories"] == ["airport", "baseballfield", "beach"]
    assert summary["warnings"] == []


def test_rrsitr_csvs_are_remapped_by_file_name(rsitmd, tmp_path):
    _, pixels = rsitmd
    csvs = _write_rrsitr_csvs(tmp_path / "csv")
    images = rsitmd[0].parent / "images"
    for sources in ([tmp_path / "csv"], csvs):  # a folder of CSVs or the CSV paths
        back, summary = _ingest(sources, tmp_path, image_root=images, name="rsitmd")
        assert summary["format"] == "rrsitr"
        _check_round_trip(back, tmp_path, pixels)
    # without --image-root the foreign paths stay as they are, and the first one is flagged
    back, summary = _ingest(csvs, tmp_path)
    assert back["image"].iloc[0]["path"] == "/data/xx/RSITMD/images/airport_1.tif"
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
    back, summary = _ingest([tmp_path / "rsitmd.parquet"], tmp_path, split="val")
    assert summary["format"] == "parquet" and set(back["split"]) == {"val"}
    assert list(back["row_no"]) == extra  # unknown columns are carried through
    (path.parent / "images" / "airport_1.tif").unlink()  # bytes are enough
    assert list(back["caption"]) == captions
    assert set(back["image_id"]) == {f"rsitmd/{f}" for f in FILES}
    first = back.iloc[0]
    assert np.array_equal(np.asarray(load_image(first["image"], tmp_path)), pixels["airport_1.tif"])
    # --caption-column picks another column
    pq.write_table(table.rename_columns(["image", "desc", "row_no"]), tmp_path / "other.parquet")
    back, _ = _ingest([tmp_path / "other.parquet"], tmp_path, caption_column="desc")
    assert list(back["caption"]) == captions and set(back["split"]) == {"train"}


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
    back, summary = _ingest([folder], tmp_path)  # the folder names the dataset and holds the images
    assert summary["format"] == "folder"
    _check_round_trip(back, tmp_path, pixels, dataset="ucm")


def test_embed_makes_a_self_contained_file(rsitmd, tmp_path):
    path, pixels = rsitmd
    progress = []
    back, summary = _ingest([path], tmp_path, embed=True,
                            progress=lambda done, total, what: progress.append(what))
    assert "checking images" in progress and "embedding images" in progress
    assert summary["images_checked"]
    assert all(im["bytes"] and im["path"] in FILES for im in back["image"])
    for f in FILES:
        (path.parent / "images" / f).unlink()
    _check_round_trip(back, tmp_path, pixels)


def test_empty_captions_fail_unless_dropped(rsitmd, tmp_path):
    path, _ = rsitmd
    data = json.loads(path.read_text())
    data["images"][1]["sentences"][1]["raw"] = "   "
    path.write_text(json.dumps(data))
    with pytest.raises(NctoolError, match=r"images\[1\] \(beach_2\.tif\) sentence 1: empty caption; .*--drop-empty"):
        _ingest([path], tmp_path)
    back, summary = _ingest([path], tmp_path, drop_empty=True)
    assert summary["dropped_empty_captions"] == 1 and len(back) == 7
    assert "rsitmd/beach_2.tif#1" not in set(back["pair_id"])  # ids keep their source position


@pytest.mark.parametrize("caption", ["\x00", "\u202e\u200b", "\ufeff\u2060 \u3164"])
def test_captions_of_invisible_characters_are_empty(rsitmd, tmp_path, caption):
    path, _ = rsitmd
    data = json.loads(path.read_text())
    data["images"][1]["sentences"][1]["raw"] = caption
    data["images"][2]["sentences"][0]["raw"] = "\u200bvisible text after a zero-width space"
    path.write_text(json.dumps(data))
    with pytest.raises(NctoolError, match=r"images\[1\] \(beach_2\.tif\) sentence 1: empty caption; .*--drop-empty"):
        _ingest([path], tmp_path)
    back, summary = _ingest([path], tmp_path, drop_empty=True)
    assert summary["dropped_empty_captions"] == 1 and "rsitmd/beach_2.tif#1" not in set(back["pair_id"])
    assert "\u200bvisible text after a zero-width space" in set(back["caption"])


def test_out_that_is_a_link_to_the_source_is_refused(rsitmd, tmp_path):
    path, _ = rsitmd
    link = tmp_path / "link.parquet"
    link.symlink_to(path)
    before = path.read_bytes()
    with pytest.raises(NctoolError, match=r"link\.parquet: is also an input of this command"):
        ingest([path], out=link)
    with pytest.raises(NctoolError, match=r"link\.parquet: is also an input of this command"):
        ingest([path.parent], fmt="karpathy", out=link)
    assert link.is_symlink() and path.read_bytes() == before


def test_check_images_fails_with_one_summary_or_skips(rsitmd, tmp_path):
    path, _ = rsitmd
    (path.parent / "images" / "beach_2.tif").unlink()
    (path.parent / "images" / "00001.png").write_bytes(b"broken")
    with pytest.raises(NctoolError) as err:
        _ingest([path], tmp_path, check_images=True)
    assert not (tmp_path / "out.parquet").exists()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("2 of 4 images cannot be read (1 not found, 1 corrupt)")
    assert "beach_2.tif" in message and "00001.png" in message and "--skip-bad-images" in message
    back, summary = _ingest([path], tmp_path, skip_bad_images=True)
    assert set(back["image_id"]) == {"rsitmd/airport_1.tif", "rsitmd/baseballfield_3.png"}
    assert (summary["missing_images"], summary["corrupt_images"], summary["dropped_bad_image_pairs"]) == (1, 1, 4)


def test_missing_image_without_check_is_reported_when_needed(rsitmd, tmp_path):
    path, _ = rsitmd
    (path.parent / "images" / "airport_1.tif").unlink()
    _, summary = _ingest([path], tmp_path)
    assert "image not found" in summary["warnings"][0]
    with pytest.raises(NctoolError, match=r"1 of 4 images cannot be read \(1 not found, 0 corrupt\): "
                                          r"image not found: .*airport_1\.tif"):
        _ingest([path], tmp_path, embed=True)


def test_error_messages(rsitmd, tmp_path):
    path, _ = rsitmd
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "other.json").write_text(json.dumps({"annotations": []}))
    (tmp_path / "empty.json").write_text(json.dumps({"images": []}))
    (tmp_path / "dev.json").write_text(json.dumps({"images": [{"filename": "a_1.tif", "split": "dev",
                                                                "sentences": [{"raw": "c"}]}]}))
    (tmp_path / "number.json").write_text(json.dumps({"images": [{"filename": 7, "sentences": ["c"]}]}))
    (tmp_path / "text.json").write_text(json.dumps({"images": [{"filename": "a_1.tif", "sentences": "a caption"}]}))
    (tmp_path / "raw.json").write_text(json.dumps({"images": [{"filename": "a_1.tif", "sentences": [{"raw": 3}]}]}))
    pd.DataFrame({"path": ["a.jpg"], "text": ["c"]}).to_csv(tmp_path / "bad.csv", index=False)
    cases = [
        (dict(sources=[tmp_path / "nope.json"]), r"nope\.json: not found"),
        (dict(sources=[tmp_path / "notes.txt"]), r"notes\.txt: unknown format '\.txt'"),
        (dict(sources=[path], fmt="coco"), r"--format coco: unknown format; use auto, karpathy, rrsitr"),
        (dict(sources=[tmp_path / "other.json"]), r"other\.json: no 'images' list"),
        (dict(sources=[tmp_path / "empty.json"]), r"empty\.json: no rows"),
        (dict(sources=[tmp_path / "bad.csv"]),
         r"bad\.csv: missing column\(s\) file, caption \(columns found: path, text\)"),
        (dict(sources=[path, tmp_path / "bad.csv"]), r"tables of several formats \(folder, karpathy\)"),
        (dict(sources=[path], image_root=tmp_path / "nowhere"), r"--image-root .*nowhere: folder not found"),
        (dict(sources=[path], split="dev"), r"--split 'dev': unknown; choose from train, val, test"),
        (dict(sources=[tmp_path / "dev.json"]), r"dev\.json: images\[0\] \(a_1\.tif\) sentence 0: unknown split 'dev'"),
        (dict(sources=[tmp_path / "number.json"]), r"number\.json: images\[0\] has filename 7, not a string"),
        (dict(sources=[tmp_path / "text.json"]), r"text\.json: images\[0\] \(a_1\.tif\) has 'sentences' of type str; "
                                                 r"give a list"),
        (dict(sources=[tmp_path / "raw.json"]), r"raw\.json: images\[0\] \(a_1\.tif\) sentence 0 is 3, not text"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(NctoolError, match=pattern):
            ingest(**kwargs, out=tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_out_that_is_a_folder_or_an_input_is_refused_before_reading(rsitmd, tmp_path):
    path, _ = rsitmd
    with pytest.raises(NctoolError, match=r"is a folder; give a file path for the output"):
        ingest([path], out=tmp_path)
    _ingest([path], tmp_path)
    before = (tmp_path / "out.parquet").read_bytes()
    with pytest.raises(NctoolError, match=r"out\.parquet: is also an input of this command"):
        ingest([tmp_path / "out.parquet"], out=tmp_path / "out.parquet")
    # a table found inside a source folder is an input too
    with pytest.raises(NctoolError, match=r"out\.parquet: is also an input of this command"):
        ingest([tmp_path], fmt="parquet", out=tmp_path / "out.parquet")
    assert (tmp_path / "out.parquet").read_bytes() == before


def _folder_dataset(tmp_path, files: list[str]):
    """A folder ds/ with one real image and captions.csv naming `files` (relative to ds/ or absolute)."""
    folder = tmp_path / "ds"
    folder.mkdir()
    _save_image(folder / "ok_1.png", 0)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "token.txt").write_text("s3cr3t-token")
    rows = [{"file": f, "caption": f"caption of {f}"} for f in ["ok_1.png", *files]]
    pd.DataFrame(rows).to_csv(folder / "captions.csv", index=False)
    return folder / "captions.csv"


def test_relative_path_may_not_climb_out_of_the_image_root(tmp_path):
    captions = _folder_dataset(tmp_path, ["../secret/token.txt"])
    with pytest.raises(NctoolError, match=r"captions\.csv: row 2: image path '\.\./secret/token\.txt' leaves the "
                                          r"image root .*; .*pass --allow-outside-root"):
        _ingest([captions], tmp_path, embed=True)
    assert not (tmp_path / "out.parquet").exists()
    # allowed on request: stored (absolute, outside the root), but still never embedded as it is no image
    back, _ = _ingest([captions], tmp_path, allow_outside_root=True)
    assert list(back["image"].map(lambda im: im["path"])) == ["ok_1.png", str(tmp_path / "secret" / "token.txt")]
    with pytest.raises(NctoolError, match=rf"1 of 2 images cannot be read \(0 not found, 1 corrupt\): {CORRUPT}: "
                                          r".*token\.txt"):
        _ingest([captions], tmp_path, allow_outside_root=True, embed=True)


def test_embed_copies_only_images(tmp_path):
    """An absolute path may name any file: embedding decodes each one, so a non-image never gets in."""
    captions = _folder_dataset(tmp_path, [str(tmp_path / "secret" / "token.txt")])
    with pytest.raises(NctoolError, match=rf"{CORRUPT}: .*token\.txt.*--skip-bad-images"):
        _ingest([captions], tmp_path, embed=True)
    assert not (tmp_path / "out.parquet").exists()
    back, summary = _ingest([captions], tmp_path, embed=True, skip_bad_images=True)
    assert list(back["image_id"]) == ["ds/ok_1.png"] and summary["corrupt_images"] == 1
    assert b"s3cr3t-token" not in (tmp_path / "out.parquet").read_bytes()


def test_moved_image_folder_is_found_with_the_new_root(rsitmd, tmp_path):
    path, pixels = rsitmd
    _ingest([path], tmp_path)
    moved = tmp_path / "elsewhere" / "rsitmd-images"
    moved.parent.mkdir()
    (path.parent / "images").rename(moved)
    with pytest.raises(NctoolError, match="image not found; pass --image-root"):
        load_image(read_table(tmp_path / "out.parquet")["image"].iloc[0], resolve_root(tmp_path / "out.parquet"))
    _check_round_trip(read_table(tmp_path / "out.parquet"), tmp_path, pixels, image_root=moved)


def test_duplicate_ids_are_refused(rsitmd, tmp_path):
    path, _ = rsitmd
    csvs = _write_rrsitr_csvs(tmp_path / "csv")
    leaked = pd.read_csv(csvs[0]).head(1)  # a training image also in the test file
    pd.concat([pd.read_csv(csvs[2]), leaked]).to_csv(csvs[2], index=False)
    with pytest.raises(NctoolError, match=r"duplicate ids: image 'rsitmd/airport_1\.tif' is in splits test, train"):
        _ingest(csvs, tmp_path, image_root=path.parent / "images")
    # two files behind one image id (absolute paths keep only their file name)
    pd.DataFrame({"file": [f"{tmp_path}/a/x_1.png", f"{tmp_path}/b/x_1.png"], "caption": ["c", "d"]}).to_csv(
        tmp_path / "captions.csv", index=False)
    with pytest.raises(NctoolError, match=r"image id '.*/x_1\.png' names several files .*/a/x_1\.png, .*/b/x_1\.png"):
        _ingest([tmp_path / "captions.csv"], tmp_path)
    df, _ = _ingest([path], tmp_path)
    df.loc[1, "pair_id"] = df.loc[0, "pair_id"]
    write_table(df, tmp_path / "dup.parquet")
    with pytest.raises(NctoolError, match=r"pair_id 'rsitmd/airport_1\.tif#0' appears more than once"):
        _ingest([tmp_path / "dup.parquet"], tmp_path)


SUMMARY = {"format": "karpathy", "datasets": ["d"], "rows": 1, "images": 1, "splits": {}, "categories": [],
           "images_checked": False, "missing_images": 0, "corrupt_images": 0, "dropped_bad_image_pairs": 0,
           "dropped_empty_captions": 0, "image_root": "/r", "embedded": False, "warnings": [], "out": "o.parquet"}


def test_cli_flags_reach_the_library(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(nctool.cli.ingest, "ingest", lambda *args, **kwargs: calls.append((args, kwargs)) or SUMMARY)
    result = invoke("ingest", "a.json", "b.json", "--out", "o.parquet", "--format", "rrsitr", "--name", "n",
                    "--image-root", "imgs", "--embed", "--check-images", "--skip-bad-images", "--drop-empty",
                    "--allow-outside-root", "--caption-column", "desc", "--split", "val")
    assert result.exit_code == 0, result.output
    [(args, kwargs)] = calls
    progress = kwargs.pop("progress")
    assert callable(progress)
    assert args == ([Path("a.json"), Path("b.json")],)
    assert kwargs == dict(out=Path("o.parquet"), fmt="rrsitr", name="n", image_root=Path("imgs"), embed=True,
                          check_images=True, skip_bad_images=True, drop_empty=True, allow_outside_root=True,
                          caption_column="desc", split="val")
    assert type(kwargs["fmt"]) is str
    calls.clear()
    assert invoke("ingest", "a.json", "--out", "o.parquet").exit_code == 0
    [(_, kwargs)] = calls
    assert (kwargs["fmt"], kwargs["embed"], kwargs["allow_outside_root"], kwargs["split"]) == ("auto", False, False,
                                                                                               None)
    # the choices are the library's own list
    assert invoke("ingest", "a.json", "--out", "o.parquet", "--format", "coco").exit_code == 2
    help_text = invoke("ingest", "--help").output
    assert all(f in help_text for f in FORMAT_CHOICES)


def test_cli_error_is_left_to_main_and_writes_nothing(rsitmd, tmp_path):
    path, _ = rsitmd
    (path.parent / "images" / "beach_2.tif").write_bytes(b"broken")
    result = invoke("ingest", path, "--out", tmp_path / "rsitmd.parquet", "--check-images")
    assert isinstance(result.exception, NctoolError)
    assert str(result.exception).startswith("1 of 4 images cannot be read (0 not found, 1 corrupt)")
    assert list(tmp_path.glob("*.parquet*")) == []


def test_cli_ingest_end_to_end(rsitmd, tmp_path):
    path, pixels = rsitmd
    out = tmp_path / "rsitmd.parquet"
    result = run_cli("ingest", path, "--out", out, "--check-images")
    assert result.returncode == 0, result.stderr
    assert "wrote 8 pairs" in result.stdout and "images checked: 0 not found, 0 corrupt" in result.stdout
    assert result.stderr.count("warning") == 0 and "Traceback" not in result.stderr
    back = read_table(out)
    assert len(back) == 8 and resolve_root(out) == path.parent / "images"
