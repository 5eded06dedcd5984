"""Checkpoint files (nctool.model.checkpoint): atomic save, and a load that never runs code from the file."""

import os
import pickle

import pandas as pd
import pytest
import torch

from nctool.errors import NctoolError
from nctool.model.checkpoint import read_checkpoint, save_checkpoint


def test_save_then_read_round_trips_and_refuses_what_is_not_a_checkpoint(tmp_path):
    payload = {"model": {"w": torch.arange(3.0)}, "config": {"model": {"name": "nctool-tiny"}}, "epoch": 2}
    save_checkpoint(payload, tmp_path / "run.pt")
    loaded = read_checkpoint(tmp_path / "run.pt")
    assert loaded["epoch"] == 2 and torch.equal(loaded["model"]["w"], torch.arange(3.0))
    assert [path.name for path in tmp_path.iterdir()] == ["run.pt"]  # no temp file left beside it
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(NctoolError, match="other.pt: not an nctool checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    with pytest.raises(NctoolError, match="missing.pt: checkpoint not found"):
        read_checkpoint(tmp_path / "missing.pt")


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['NCTOOL_TEST_MARKER']}",))


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("NCTOOL_TEST_MARKER", str(marker))
    torch.save({"model": {}, "config": {}, "extra": _Payload()}, tmp_path / "evil.pt", pickle_module=pickle)
    with pytest.raises(NctoolError, match="evil.pt: not loaded .*could run code"):
        read_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_a_file_that_is_no_checkpoint_is_named_for_what_it_is(tmp_path):
    pd.DataFrame({"pair_id": ["a"]}).to_parquet(tmp_path / "scores.parquet")
    with pytest.raises(NctoolError, match="scores.parquet: not loaded .it is a Parquet file: a dataset or scores, not"):
        read_checkpoint(tmp_path / "scores.parquet")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(NctoolError, match=r"notes.txt: not loaded \(not a checkpoint file: \w+\); use a checkpoint"):
        read_checkpoint(tmp_path / "notes.txt")
