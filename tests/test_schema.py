import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nctool import schema
from nctool.errors import NctoolError


def _frame(n=6):
    return pd.DataFrame({
        "pair_id": [f"d/{i // 2}#{i % 2}" for i in range(n)],
        "image_id": [f"d/{i // 2}" for i in range(n)],
        "image": [{"bytes": None, "path": f"{i // 2}.png"} for i in range(n)],
        "caption": [f"caption {i}" for i in range(n)],
        "split": ["train"] * (n - 2) + ["val", "test"],
        "category": ["a"] * n,
    })


def test_round_trip_keeps_types_and_values(tmp_path):
    dest = schema.write_table(_frame(), tmp_path / "d.parquet", row_group_size=2)
    assert pq.ParquetFile(dest).num_row_groups == 3
    back = schema.read_table(dest)
    assert back["caption"].tolist() == _frame()["caption"].tolist()
    assert back["image"][0] == {"bytes": None, "path": "0.png"}
    assert pq.read_schema(dest).field("image").type.equals(schema.IMAGE_TYPE)


def test_streaming_reads_in_batches(tmp_path):
    dest = schema.write_table(_frame(), tmp_path / "d.parquet")
    sizes = [len(b) for b in schema.iter_batches(dest, batch_size=4)]
    assert sizes == [4, 2]


def test_missing_column_names_it(tmp_path):
    pq.write_table(pa.Table.from_pandas(_frame().drop(columns=["caption"])), tmp_path / "x.parquet")
    with pytest.raises(NctoolError, match="missing required column 'caption'"):
        schema.read_table(tmp_path / "x.parquet")


def test_wrong_type_names_column(tmp_path):
    df = _frame()
    df["noisy"] = ["yes"] * len(df)
    pq.write_table(pa.Table.from_pandas(df), tmp_path / "x.parquet")
    with pytest.raises(NctoolError, match=r"column 'noisy' has type \w*string, expected bool"):
        schema.read_table(tmp_path / "x.parquet")


def test_duplicate_pair_id_and_bad_split_are_refused(tmp_path):
    df = _frame()
    df.loc[1, "pair_id"] = df.loc[0, "pair_id"]
    with pytest.raises(NctoolError, match="appears more than once"):
        schema.check_frame(df, "x")
    df = _frame()
    df.loc[0, "split"] = "training"
    with pytest.raises(NctoolError, match="'split' has values \\['training'\\]"):
        schema.check_frame(df, "x")


def test_missing_and_non_parquet_files(tmp_path):
    with pytest.raises(NctoolError, match="file not found"):
        schema.read_table(tmp_path / "nope.parquet")
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(NctoolError, match="not a readable Parquet file"):
        schema.read_table(tmp_path / "x.parquet")


def test_failed_write_leaves_earlier_file_intact(tmp_path):
    dest = schema.write_table(_frame(), tmp_path / "d.parquet")
    before = dest.read_bytes()
    with pytest.raises(RuntimeError):
        with schema.TableWriter(dest) as writer:
            writer.write(_frame())
            raise RuntimeError("interrupted")
    assert dest.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.parquet"]  # no temp file left


def test_empty_write_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(NctoolError, match="nothing to write"):
        with schema.TableWriter(tmp_path / "e.parquet"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_image_root_from_metadata_or_folder(tmp_path):
    a = schema.write_table(_frame(), tmp_path / "a.parquet")
    assert schema.image_root(a) == tmp_path.resolve()
    b = schema.write_table(_frame(), tmp_path / "b.parquet", image_root="/data/imgs")
    assert schema.image_root(b) == __import__("pathlib").Path("/data/imgs")


def test_a_folder_given_as_a_dataset_is_named(tmp_path):
    with pytest.raises(NctoolError, match="is a folder; give the .parquet file inside it"):
        schema.read_table(tmp_path)


@pytest.mark.parametrize("caption", [None, "", "   ", "\x00", "\u202e\u200b", "\ufeff\u2060\u3000\n"])
def test_null_or_empty_captions_are_refused_when_read_or_streamed(tmp_path, caption):
    frame = _frame()
    frame.loc[3, "caption"] = caption
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "d.parquet")
    with pytest.raises(NctoolError, match=r"pair 'd/1#1' has an empty or null caption \(1 in all\)"):
        schema.read_table(tmp_path / "d.parquet")
    # a stream knows only the batch at hand
    with pytest.raises(NctoolError, match=rf"pair 'd/1#1' has an empty or null caption \(1 in its batch of "
                                          rf"{len(frame)} rows\)"):
        list(schema.iter_batches(tmp_path / "d.parquet"))


def test_check_output_refuses_a_folder_or_an_input(tmp_path):
    data = schema.write_table(_frame(), tmp_path / "d.parquet")
    with pytest.raises(NctoolError, match="is a folder"):
        schema.check_output(tmp_path, data)
    with pytest.raises(NctoolError, match="is also an input"):
        schema.check_output(tmp_path / "sub" / ".." / "d.parquet", data)
    (tmp_path / "link.parquet").symlink_to(data)
    with pytest.raises(NctoolError, match="is also an input"):
        schema.check_output(tmp_path / "link.parquet", data)
    assert schema.check_output(tmp_path / "new.parquet", data) == tmp_path / "new.parquet"


@pytest.mark.parametrize("text, blank", [
    (None, True), (float("nan"), True), ("", True), (" \t\n\u3000\u00a0", True), ("\x00", True), ("\u202e\u200b", True),
    ("\ufeff\u2060\u200c\u200d\u00ad\u2066\u2069", True), ("\u3164\ufe0f\u034f", True),
    ("a", False), ("\u200ba", False), ("\u202eevil", False), ("é", False), ("\u0301", False), ("\u2800", False),
])
def test_is_blank_and_blank_mask_agree(text, blank):
    assert schema.is_blank(text) is blank
    assert schema.blank_mask(pd.Series([text, "x"], dtype=object)).tolist() == [blank, False]


def test_blank_mask_takes_arrow_arrays():
    assert schema.blank_mask(pa.array(["\u200b", None, "ok"])).tolist() == [True, True, False]


def test_check_output_refuses_a_path_inside_an_input_folder(tmp_path):
    folder = tmp_path / "emb"
    folder.mkdir()
    for out in (folder / "manifest.json", folder / "deeper" / "s.parquet", tmp_path / "link" / "s.parquet"):
        (tmp_path / "link").unlink(missing_ok=True)
        (tmp_path / "link").symlink_to(folder)
        with pytest.raises(NctoolError, match=f"is inside {folder}, which this command reads"):
            schema.check_output(out, folder)
    assert schema.check_output(tmp_path / "emb.parquet", folder) == tmp_path / "emb.parquet"


def test_check_output_refuses_an_existing_file_without_overwrite(tmp_path):
    out = tmp_path / "out.parquet"
    assert schema.check_output(out, overwrite=False) == out
    out.write_text("mine")
    with pytest.raises(NctoolError, match=r"out\.parquet: already exists; pass --overwrite to replace it"):
        schema.check_output(out, overwrite=False)
    assert schema.check_output(out) == out


def test_check_output_of_a_folder(tmp_path):
    data = schema.write_table(_frame(), tmp_path / "d.parquet")
    with pytest.raises(NctoolError, match="d.parquet: is a file, not a folder"):
        schema.check_output(data, data, folder=True)
    assert schema.check_output(tmp_path / "run", data, folder=True) == tmp_path / "run"
    assert schema.check_output(tmp_path, data, folder=True) == tmp_path  # a folder may hold its inputs


def test_check_output_tries_to_write_where_the_output_goes(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker / "out.parquet", blocker / "a" / "b" / "out.parquet"):
        with pytest.raises(NctoolError, match=f"cannot be written: {blocker} is a file, not a folder"):
            schema.check_output(out)
    with pytest.raises(NctoolError, match=f"cannot be written: {blocker} is a file"):
        schema.check_output(blocker / "run", folder=True)

    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(schema.tempfile, "mkstemp", refuse)  # as a read-only folder does, even to root
    with pytest.raises(NctoolError, match=rf"new{os.sep}out\.parquet: cannot write in {tmp_path} \(Permission "
                                          rf"denied\); give a path in a folder you can write to"):
        schema.check_output(tmp_path / "new" / "out.parquet")
    monkeypatch.undo()
    schema.check_output(tmp_path / "new" / "out.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the probe leaves nothing behind


def test_orphan_temp_files_of_a_killed_write_are_removed_by_the_next(tmp_path):
    orphan = tmp_path / ".d.parquet.abc123.tmp"
    orphan.write_bytes(b"x" * 1000)  # what a kill during an earlier write of d.parquet leaves
    other = tmp_path / ".e.parquet.abc123.tmp"
    other.write_bytes(b"y")
    schema.write_table(_frame(), tmp_path / "d.parquet")
    assert not orphan.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".e.parquet.abc123.tmp", "d.parquet"]


def test_row_hashes_tell_captions_apart():
    frame = _frame()
    other = frame.assign(caption=frame["caption"].where(frame.index != 2, "another caption"))
    same = schema.row_hashes(frame) == schema.row_hashes(other)
    assert same.tolist() == [True, True, False, True, True, True]
    assert schema.dataset_fingerprint(frame) != schema.dataset_fingerprint(other)
    assert schema.dataset_fingerprint(frame) == schema.dataset_fingerprint(frame.copy())
