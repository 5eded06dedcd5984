"""What every command writes: never over its own inputs, refused up front where it cannot be written.

Cross-command cases of nctool.schema.check_output (issue 15). A folder that cannot be written is made
with chmod, or, for root (whom chmod does not stop), taken from sysfs, where not even root creates files.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from cli_helpers import invoke, run_cli

import nctool.curate.filtering
import nctool.curate.review.gallery
import nctool.curate.review.server
import nctool.data.ingest
import nctool.data.noise
import nctool.data.synth
import nctool.detect.score
import nctool.detect.shards
import nctool.model.train
import nctool.report.bench
import nctool.report.demo
from nctool.data.decisions import DecisionStore, default_decisions_path
from nctool.data.synth import synthesize
from nctool.errors import NctoolError


@pytest.fixture
def data(tmp_path) -> Path:
    """A tiny dataset (10 images, 50 pairs)."""
    return synthesize(tmp_path / "data" / "syn.parquet", images=10, size=32, seed=0, splits=(0.6, 0.2, 0.2))["path"]


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """An existing folder in which no file can be created, whoever runs the tests."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    folder = Path("/sys/kernel")
    try:
        fd, probe = tempfile.mkstemp(dir=folder)
    except OSError:
        yield folder
        return
    os.close(fd)
    os.unlink(probe)
    pytest.skip("no folder here that root cannot write")


def _boom(*args, **kwargs):
    raise AssertionError("the command started its work before it checked its output")


def _refused(result, *names) -> str:
    """The NctoolError of an in-process run (nctool.cli.main prints it as one line, exit 2)."""
    assert isinstance(result.exception, NctoolError), (result.exception, result.output)
    message = str(result.exception)
    assert "\n" not in message and all(str(name) in message for name in names), message
    return message


# --- no command writes over its own input ---------------------------------------------------------

def test_review_export_refuses_the_dataset_and_a_link_to_it(data, tmp_path):
    scores = tmp_path / "scores.parquet"
    scores.write_bytes(b"scores")
    with DecisionStore(default_decisions_path(scores), reviewer="ann") as store:
        store.record("syn/0#0", "keep")
    before = data.read_bytes()
    message = _refused(invoke("review", data, "--scores", scores, "--export", data), data)
    assert "is also an input" in message
    link = tmp_path / "link.parquet"
    link.symlink_to(data)
    assert "is also an input" in _refused(invoke("review", data, "--scores", scores, "--export", link), link)
    assert data.read_bytes() == before and link.is_symlink()
    # an ordinary path is written
    assert invoke("review", data, "--scores", scores, "--export", tmp_path / "decisions.parquet").exit_code == 0


@pytest.mark.parametrize("name", ["manifest.json", "shard-00000.parquet", "sub/scores.parquet"])
def test_score_refuses_an_out_inside_the_embeddings_folder(data, tmp_path, name):
    folder = tmp_path / "emb"
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
    (folder / "shard-00000.parquet").write_bytes(b"shard")
    before = {p: p.read_bytes() for p in folder.rglob("*")}
    message = _refused(invoke("score", data, "--embeddings", folder, "--out", folder / name), folder / name)
    assert f"inside {folder}" in message
    assert {p: p.read_bytes() for p in folder.rglob("*")} == before


def test_bench_out_that_is_its_data_file_is_refused(data, monkeypatch):
    monkeypatch.setattr(nctool.report.bench, "read_table", _boom)
    before = data.read_bytes()
    assert "is a file, not a folder" in _refused(invoke("bench", data, "--out", data, "--method", "vanilla"), data)
    assert data.read_bytes() == before


def test_demo_out_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    message = _refused(invoke("demo", "--out", out, "--images", 10, "--base-images", 10), out)
    assert "is a file, not a folder" in message and out.read_text() == "mine"


# --- a folder that cannot be written: one line, up front -------------------------------------------

def _commands(data: Path, u: Path, tmp_path: Path) -> dict[str, tuple[list, list]]:
    """command -> (its arguments, writing into `u`; the (module, name) pairs its work starts with)."""
    scores = tmp_path / "scores.parquet"
    scores.write_bytes(b"scores")
    source = tmp_path / "captions.csv"
    source.write_text("file,caption\na.png,a caption\n")
    return {
        "synth": (["synth", "--out", u / "syn.parquet", "--images", 10], [(nctool.data.synth, "generate")]),
        "ingest": (["ingest", source, "--out", u / "data.parquet"], [(nctool.data.ingest, "_located")]),
        "inject": (["inject", data, "--kind", "caption-shuffle", "--rate", 0.2, "--out", u / "noised"],
                   [(nctool.data.noise, "read_table")]),
        "train": (["train", data, "--out", u / "run"], [(nctool.model.train, "prepare")]),
        "embed": (["embed", data, "--model", "nctool-tiny", "--out", u / "emb"],
                  [(nctool.detect.shards, "read_index")]),
        "score": (["score", data, "--model", "nctool-tiny", "--out", u / "scores.parquet"],
                  [(nctool.detect.score, "read_index")]),
        "score --embeddings": (["score", data, "--model", "nctool-tiny", "--embeddings", u / "emb",
                                "--out", tmp_path / "s.parquet"], [(nctool.detect.score, "read_index")]),
        "filter": (["filter", data, "--scores", scores, "--out", u / "kept.parquet"],
                   [(nctool.curate.filtering, "read_scores")]),
        "filter --dropped": (["filter", data, "--scores", scores, "--out", tmp_path / "kept.parquet",
                              "--dropped", u / "dropped.parquet"], [(nctool.curate.filtering, "read_scores")]),
        "review --export": (["review", data, "--scores", scores, "--export", u / "decisions.parquet"],
                            [(nctool.curate.review.server, "export_decisions")]),
        "review --static": (["review", data, "--scores", scores, "--static", u / "gallery.html"],
                            [(nctool.curate.review.gallery, "ReviewQueue")]),
        "bench": (["bench", data, "--out", u / "bench"], [(nctool.report.bench, "read_table")]),
        "demo": (["demo", "--out", u / "demo"],
                 [(nctool.report.demo, "build_base"), (nctool.report.demo, "synthesize")]),
    }


@pytest.mark.parametrize("command", ["synth", "ingest", "inject", "train", "embed", "score", "score --embeddings",
                                     "filter", "filter --dropped", "review --export", "review --static", "bench",
                                     "demo"])
def test_every_command_refuses_a_folder_it_cannot_write_before_any_work(data, tmp_path, unwritable, monkeypatch,
                                                                         command):
    args, work = _commands(data, unwritable, tmp_path)[command]
    for module, name in work:
        monkeypatch.setattr(module, name, _boom)
    message = _refused(invoke(*args), unwritable)
    assert "cannot write" in message and "folder you can write to" in message


@pytest.mark.slow
def test_score_fails_before_the_run_in_a_real_process(data, tmp_path, unwritable):
    result = run_cli("score", data, "--model", "nctool-tiny", "--out", unwritable / "scores.parquet")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(unwritable) in lines[0], result.stderr


def test_an_output_below_a_file_is_refused_in_one_line(data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for args in (["filter", data, "--scores", data, "--out", blocker / "kept.parquet"],
                 ["train", data, "--out", blocker / "run"]):
        assert "not a folder" in _refused(invoke(*args), blocker)


# --- captions of only invisible characters are empty everywhere ------------------------------------

@pytest.mark.parametrize("caption", ["\x00", "\u202e\u200b", " \ufeff\u2060\t"])
def test_a_fix_to_an_invisible_caption_is_refused(tmp_path, caption):
    with DecisionStore(tmp_path / "d.sqlite", reviewer="ann") as store:
        with pytest.raises(NctoolError, match="fix without a new caption"):
            store.record("syn/0#0", "fix", new_caption=caption)
        store.record("syn/0#0", "fix", new_caption="\u202ea real caption")  # visible text with marks is text
