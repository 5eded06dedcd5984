import os
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timezone

import pandas as pd
import pytest

from nctool import decisions as decisions_module
from nctool.decisions import (ACTIONS, DECISION_COLUMNS, DecisionStore, apply_decisions, default_decisions_path,
                              export_decisions, read_decisions)
from nctool.errors import NctoolError
from nctool.schema import write_table


@pytest.fixture
def store(tmp_path):
    with DecisionStore(tmp_path / "scores.decisions.sqlite", reviewer="ann") as store:
        yield store


def pairs() -> pd.DataFrame:
    return pd.DataFrame({"pair_id": ["p0", "p1", "p2", "p3"], "caption": ["a field", "a lake", "a road", "a port"],
                         "split": ["train", "train", "val", "test"]})


def test_default_path_is_beside_the_scores(tmp_path):
    assert default_decisions_path(tmp_path / "run" / "scores.parquet") == tmp_path / "run" / "scores.decisions.sqlite"
    assert ACTIONS == ("keep", "drop", "fix")


def test_record_returns_the_decision_and_the_newest_one_is_current(store):
    decision = store.record("p1", "fix", new_caption="a harbour")
    assert {key: decision[key] for key in ("pair_id", "action", "new_caption", "reviewer")} == \
        {"pair_id": "p1", "action": "fix", "new_caption": "a harbour", "reviewer": "ann"}
    assert datetime.fromisoformat(decision["time"]).utcoffset() == timezone.utc.utcoffset(None)
    store.record("p0", "keep")
    store.record("p0", "drop", reviewer="bob")  # last write wins
    current = store.current()
    assert list(current.columns) == list(DECISION_COLUMNS)
    assert current[["pair_id", "action", "new_caption", "reviewer"]].to_dict("records") == [
        {"pair_id": "p0", "action": "drop", "new_caption": None, "reviewer": "bob"},
        {"pair_id": "p1", "action": "fix", "new_caption": "a harbour", "reviewer": "ann"}]
    assert store.get(["p1", "p9"]) == {"p1": decision}
    assert store.counts() == {"keep": 0, "drop": 1, "fix": 1}


def test_default_reviewer_is_the_os_user(tmp_path, monkeypatch):
    monkeypatch.setattr(decisions_module.getpass, "getuser", lambda: "curator7")
    with DecisionStore(tmp_path / "d.sqlite") as store:
        assert store.record("p0", "keep")["reviewer"] == "curator7"


@pytest.mark.parametrize("action, options, message", [
    ("accept", {}, "decision on pair 'p0': action 'accept' is unknown; choose from keep, drop, fix"),
    ("fix", {}, "decision on pair 'p0': fix without a new caption; give the corrected caption"),
    ("fix", {"new_caption": "  "}, "decision on pair 'p0': fix without a new caption"),
    ("keep", {"new_caption": "a lake"}, "decision on pair 'p0': a new caption comes only with action 'fix', not 'keep'"),
    ("drop", {"reviewer": ""}, "decision on pair 'p0': no reviewer"),
])
def test_record_refuses_invalid_decisions(store, action, options, message):
    with pytest.raises(NctoolError, match=message) as error:
        store.record("p0", action, **options)
    assert "\n" not in str(error.value)
    assert store.current().empty


def test_undo_removes_the_newest_decision_and_returns_the_current_one(store):
    first = store.record("p0", "keep")
    store.record("p1", "drop")
    store.record("p0", "fix", new_caption="a meadow")
    assert store.undo("p0") == first
    assert store.undo() is None  # the newest standing decision is p1's drop, its only one
    assert store.get(["p0", "p1"]) == {"p0": first}
    assert store.undo() is None and store.current().empty  # then p0's keep
    assert store.undo() is None and store.undo("p1") is None  # nothing left to undo
    store.record("p1", "keep")
    assert store.current()["pair_id"].tolist() == ["p1"]
    with sqlite3.connect(store.path) as connection:  # the log keeps the undone decisions
        assert connection.execute("SELECT COUNT(*) FROM decisions WHERE undone IS NOT NULL").fetchone() == (3,)


def test_a_killed_process_loses_nothing_recorded(tmp_path):
    path = tmp_path / "d.sqlite"
    script = ("import sys, time\nfrom nctool.decisions import DecisionStore\n"
              "store = DecisionStore(sys.argv[1], reviewer='ann')\n"
              "store.record('p0', 'fix', new_caption='a marina')\nprint('recorded', flush=True)\ntime.sleep(600)\n")
    process = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "recorded\n"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    with DecisionStore(path) as store:
        assert store.get(["p0"])["p0"]["new_caption"] == "a marina"
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_threads_share_one_store_and_stores_share_one_file(store):
    def review(thread: int) -> None:
        for index in range(20):
            store.record(f"t{thread}-{index}", ACTIONS[index % 2])

    threads = [threading.Thread(target=review, args=(thread,)) for thread in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.counts() == {"keep": 60, "drop": 60, "fix": 0}
    with DecisionStore(store.path, reviewer="bob") as other:
        other.record("t0-0", "drop")
    store.record("t0-1", "keep")
    assert store.get(["t0-0", "t0-1"])["t0-0"]["reviewer"] == "bob"
    assert store.counts() == {"keep": 60, "drop": 60, "fix": 0}  # t0-0 went keep -> drop, t0-1 drop -> keep


def test_export_and_read_back(store, tmp_path):
    store.record("p0", "keep")
    store.record("p1", "fix", new_caption="a reservoir")
    out = export_decisions(store.path, tmp_path / "decisions.parquet")
    exported = read_decisions(out)
    assert exported.to_dict("records") == store.current().to_dict("records") == read_decisions(store.path).to_dict("records")
    with pytest.raises(NctoolError, match="is also an input of this command"):
        export_decisions(store.path, store.path)


def test_read_decisions_refuses_what_is_not_decisions(tmp_path):
    (tmp_path / "notes.txt").write_text("keep p0\n")
    write_table(pairs(), tmp_path / "pairs.parquet")
    write_table(pd.DataFrame({"pair_id": ["p0", "p0"], "action": "keep", "new_caption": None, "time": "t",
                              "reviewer": "ann"}), tmp_path / "twice.parquet")
    with sqlite3.connect(tmp_path / "other.sqlite") as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    for name, message in [("missing.sqlite", "file not found"), ("notes.txt", "neither a decision store"),
                          ("pairs.parquet", "not a decisions table \\(no column 'action'\\)"),
                          ("twice.parquet", "pair_id 'p0' appears more than once"),
                          ("other.sqlite", "a SQLite database but not a decision store"), (".", "is a folder")]:
        with pytest.raises(NctoolError, match=message) as error:
            read_decisions(tmp_path / name)
        assert "\n" not in str(error.value)
    with sqlite3.connect(tmp_path / "other.sqlite") as connection:  # untouched: still its own journal mode
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_apply_decisions_overrides_and_fixes(store):
    store.record("p0", "drop")
    store.record("p1", "fix", new_caption="a reservoir")
    store.record("p2", "keep")
    data = pairs()
    applied = apply_decisions(data, store.current())
    assert applied["decision"].tolist() == ["drop", "fix", "keep", None]
    assert applied["caption"].tolist() == ["a field", "a reservoir", "a road", "a port"]
    assert applied["caption_original"].tolist() == [None, "a lake", None, None]
    assert data["caption"].tolist() == ["a field", "a lake", "a road", "a port"]  # the input is not changed
    store.record("p1", "fix", new_caption="a dam")
    again = apply_decisions(applied, store.current())
    assert again.loc[1, ["caption", "caption_original"]].tolist() == ["a dam", "a lake"]  # the first text stays


@pytest.mark.parametrize("decisions, message", [
    (pd.DataFrame({"pair_id": ["p7"], "action": ["keep"], "new_caption": [None], "time": ["t"], "reviewer": ["ann"]}),
     r"decisions: 1 pair id\(s\) are not in the dataset \(e.g. 'p7'\)"),
    (pd.DataFrame({"pair_id": ["p0"], "action": ["fix"], "new_caption": [None], "time": ["t"], "reviewer": ["ann"]}),
     "decisions on pair 'p0': fix without a new caption"),
    (pd.DataFrame({"pair_id": ["p0", "p0"], "action": ["keep", "drop"], "new_caption": None, "time": "t",
                   "reviewer": "ann"}), "decisions: pair 'p0' has several decisions"),
    (pd.DataFrame({"pair_id": ["p0"], "action": ["keep"]}), r"decisions: not a decisions table \(no column 'new_caption'\)"),
])
def test_apply_decisions_refuses_bad_decisions(decisions, message):
    with pytest.raises(NctoolError, match=message) as error:
        apply_decisions(pairs(), decisions)
    assert "\n" not in str(error.value)
