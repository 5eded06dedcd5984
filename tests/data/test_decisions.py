import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import invoke, run_cli
from review_helpers import TOKEN, review_client, review_data, review_scores, write_review_files

from nctool.cli import review as review_cli
from nctool.curate.review.server import review_app
from nctool.data import decisions as decisions_module
from nctool.data.decisions import (
    ACTIONS,
    DECISION_COLUMNS,
    DecisionStore,
    apply_decisions,
    default_decisions_path,
    export_decisions,
    match_decisions,
    read_decisions,
)
from nctool.errors import NctoolError
from nctool.schema import read_table, row_hashes, write_table


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
    ("keep", {"new_caption": "a lake"},
     "decision on pair 'p0': a new caption comes only with action 'fix', not 'keep'"),
    ("drop", {"reviewer": ""}, "decision on pair 'p0': no reviewer"),
])
def test_record_refuses_invalid_decisions(store, action, options, message):
    with pytest.raises(NctoolError, match=message) as error:
        store.record("p0", action, **options)
    assert "\n" not in str(error.value)
    assert store.current().empty


def test_undo_removes_the_newest_decision_and_names_its_pair(store):
    first = store.record("p0", "keep")
    store.record("p1", "drop")
    store.record("p0", "fix", new_caption="a meadow")
    assert store.undo("p0") == ["p0"] and store.get(["p0"]) == {"p0": first}
    assert store.undo() == ["p1"]  # the newest standing decision is p1's drop, its only one
    assert store.get(["p0", "p1"]) == {"p0": first}
    assert store.undo() == ["p0"] and store.current().empty  # then p0's keep
    assert store.undo() == [] and store.undo("p1") == []  # nothing left to undo
    store.record("p1", "keep")
    assert store.current()["pair_id"].tolist() == ["p1"]
    with sqlite3.connect(store.path) as connection:  # the log keeps the undone decisions
        assert connection.execute("SELECT COUNT(*) FROM decisions WHERE undone IS NOT NULL").fetchone() == (3,)


def test_a_bulk_action_is_one_batch_that_one_undo_takes_back(store):
    store.record("p0", "keep")
    rule = "undecided pairs whose noisy probability is at least 0.9"
    batch = store.record_many(["p0", "p1", "p2"], "drop", rule=rule, row_hashes=["0123456789abcdef", None, None])
    assert batch == {"batch": "bulk-2", "time": batch["time"], "reviewer": "ann", "action": "drop", "pairs": 3,
                     "rule": rule}
    current = store.current().set_index("pair_id")
    assert current["action"].tolist() == ["drop"] * 3 and set(current["batch"]) == {"bulk-2"}
    assert current.loc["p0", "row_hash"] == "0123456789abcdef"
    store.record("p3", "keep")
    assert store.undo() == ["p3"]
    assert store.undo("p1") == ["p0", "p1", "p2"]  # one of them names the whole bulk action
    back = store.get(["p0", "p1", "p2"])  # p0's own keep stands again
    assert list(back) == ["p0"] and (back["p0"]["action"], back["p0"]["batch"]) == ("keep", None)
    assert store.batches()[["batch", "pairs", "standing"]].values.tolist() == [["bulk-2", 3, 0]]


@pytest.mark.parametrize("pair_ids, action, message", [
    (["p0"], "fix", "needs its own caption"), ([], "drop", "no pairs"), (["p0", "p0"], "drop", "twice"),
    (["p0"], "toss", "action 'toss' is unknown")])
def test_a_bulk_action_refuses_what_it_cannot_record_and_records_nothing(store, pair_ids, action, message):
    with pytest.raises(NctoolError, match=message):
        store.record_many(pair_ids, action, rule="r")
    assert store.current().empty and store.batches().empty


def test_each_reviewer_has_their_own_current_decision(store):
    store.record("p0", "keep")
    store.record("p0", "drop", reviewer="bob")
    store.record("p1", "drop", reviewer="bob")
    assert store.current()["action"].tolist() == ["drop", "drop"]  # last write wins
    assert store.current(reviewer="ann")[["pair_id", "action"]].values.tolist() == [["p0", "keep"]]
    assert sorted(store.current(by_reviewer=True)[["pair_id", "reviewer", "action"]].values.tolist()) == [
        ["p0", "ann", "keep"], ["p0", "bob", "drop"], ["p1", "bob", "drop"]]
    assert store.get(["p0", "p1"], reviewer="ann") == {"p0": store.current(reviewer="ann").iloc[0].to_dict()}
    assert store.undo(reviewer="ann") == ["p0"] and store.current(reviewer="ann").empty  # ann's own, not bob's newer
    assert store.get(["p0"])["p0"]["reviewer"] == "bob"


def test_a_killed_process_loses_nothing_recorded(tmp_path):
    path = tmp_path / "d.sqlite"
    script = ("import sys, time\nfrom nctool.data.decisions import DecisionStore\n"
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
    assert (exported.to_dict("records") == store.current().to_dict("records")
            == read_decisions(store.path).to_dict("records"))
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
                          ("pairs.parquet", "not a decisions file \\(no column 'action'"),
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
    (pd.DataFrame({"pair_id": ["p0"], "action": ["keep"]}),
     r"decisions: not a decisions table \(no column 'new_caption'\)"),
])
def test_apply_decisions_refuses_bad_decisions(decisions, message):
    with pytest.raises(NctoolError, match=message) as error:
        apply_decisions(pairs(), decisions)
    assert "\n" not in str(error.value)


# ---- decisions belong to one version of the data ----

OLD_LOG = """CREATE TABLE decisions (seq INTEGER PRIMARY KEY, pair_id TEXT NOT NULL, action TEXT NOT NULL,
    new_caption TEXT, time TEXT NOT NULL, reviewer TEXT NOT NULL, undone TEXT);
CREATE INDEX decisions_by_pair ON decisions (pair_id, seq);"""


def old_store(path: Path) -> Path:
    """A store as nctool wrote it before decisions carried a row hash."""
    with sqlite3.connect(path) as connection:
        connection.executescript(OLD_LOG)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("INSERT INTO decisions (pair_id, action, new_caption, time, reviewer) "
                           "VALUES ('p1', 'fix', 'a reservoir', '2025-01-01T00:00:00.000+00:00', 'ann')")
    connection.close()
    return path


def two_noise_files(folder: Path) -> tuple[Path, Path]:
    """Two noise files of one base dataset (same pair ids) in folder/a and folder/b, each with its scores.

    a swaps the captions of p00 and p03, b those of p01 and p06: those four pairs differ between them.
    """
    base = review_data()
    folders = []
    for name, (i, j) in (("a", (0, 3)), ("b", (1, 6))):
        data = base.copy()
        data.loc[[i, j], "caption"] = base.loc[[j, i], "caption"].to_numpy()
        (folder / name).mkdir()
        write_table(data, folder / name / "data.parquet")
        write_table(review_scores(data), folder / name / "scores.parquet")
        folders.append(folder / name)
    return tuple(folders)


@pytest.fixture
def noise_files(tmp_path):
    """(a, b) of two_noise_files, with decisions made on a through the review page: keeps of p00 and p03, a fix
    of p01 (the three differ in b), a drop of p09 (the same in both)."""
    a, b = two_noise_files(tmp_path)
    with review_client(review_app(a / "data.parquet", a / "scores.parquet", detector="rrsitr", reviewer="ana",
                                  token=TOKEN)) as client:
        for body in ({"pair_id": "p00", "action": "keep"}, {"pair_id": "p03", "action": "keep"},
                     {"pair_id": "p01", "action": "fix", "new_caption": "a runway"},
                     {"pair_id": "p09", "action": "drop"}):
            assert client.post("/api/decision", json=body).status_code == 200
    return a, b


STALE = ("decisions: 3 decision(s) were made on another version of their pair (its image or caption has changed "
         "since, e.g. 'p00') and were not applied")


def test_decisions_carry_the_row_they_judged(noise_files, tmp_path):
    a, b = noise_files
    decisions = read_decisions(a / "scores.decisions.sqlite").set_index("pair_id")
    data = read_table(a / "data.parquet").set_index("pair_id").loc[decisions.index]
    assert list(DECISION_COLUMNS) == ["pair_id", "action", "new_caption", "time", "reviewer", "row_hash", "batch"]
    assert decisions["row_hash"].to_dict() == dict(zip(data.index, row_hashes(data)))  # of the rows shown
    exported = export_decisions(a / "scores.decisions.sqlite", tmp_path / "d.parquet")
    assert (read_decisions(exported).to_dict("records")
            == read_decisions(a / "scores.decisions.sqlite").to_dict("records"))


def test_filter_applies_no_decision_made_on_another_version_of_the_data(noise_files, tmp_path):
    a, b = noise_files
    result = invoke("filter", b / "data.parquet", "--scores", b / "scores.parquet", "--detector", "rrsitr",
                    "--decisions", a / "scores.decisions.sqlite", "--out", tmp_path / "clean.parquet",
                    "--dropped", tmp_path / "dropped.parquet")
    assert result.exit_code == 0, result.output
    assert STALE in result.output and "review those pairs again" in result.output
    assert "applied 1 decisions (keep 0, drop 1, fix 0)" in result.output
    rows = pd.concat([read_table(tmp_path / "clean.parquet"),
                      read_table(tmp_path / "dropped.parquet")]).set_index("pair_id")
    assert rows["decision"].dropna().to_dict() == {"p09": "drop"}
    assert rows.loc["p01", "caption"] == read_table(b / "data.parquet").set_index("pair_id").loc["p01", "caption"]
    same = invoke("filter", a / "data.parquet", "--scores", a / "scores.parquet", "--detector", "rrsitr",
                  "--decisions", a / "scores.decisions.sqlite", "--out", tmp_path / "clean-a.parquet")
    assert "applied 4 decisions (keep 2, drop 1, fix 1)" in same.output and "another version" not in same.output


def test_train_applies_no_decision_made_on_another_version_of_the_data(noise_files):
    from nctool.model.train import _with_decisions

    a, b = noise_files
    frame = read_table(b / "data.parquet")
    decided, notes = _with_decisions(frame, a / "scores.decisions.sqlite")
    assert any(note.startswith(STALE) for note in notes)
    assert decided.set_index("pair_id")["decision"].dropna().to_dict() == {}  # p09 dropped, the rest not applied
    assert "p09" not in set(decided["pair_id"]) and len(decided) == len(frame) - 1
    assert decided.set_index("pair_id").loc["p01", "caption"] == frame.set_index("pair_id").loc["p01", "caption"]


def test_review_shows_no_decision_made_on_another_version_of_the_data(noise_files, monkeypatch):
    a, b = noise_files
    app = review_app(b / "data.parquet", b / "scores.parquet", detector="rrsitr",
                     decisions=a / "scores.decisions.sqlite", token=TOKEN)
    assert [note for note in app.state.notes if note.startswith(STALE)]
    with review_client(app) as client:
        assert client.get("/api/summary").json()["actions"] == {"keep": 0, "drop": 1, "fix": 0}
        assert client.get("/api/queue", params={"state": "undecided", "limit": 200}).json()["total"] == 20
        client.post("/api/decision", json={"pair_id": "p00", "action": "drop"})  # decided again on this version
        assert client.get("/api/summary").json()["actions"] == {"keep": 0, "drop": 2, "fix": 0}
        client.post("/api/undo", json={"pair_id": "p00"})  # back to the keep made on a: still not shown
        assert client.get("/api/summary").json()["actions"] == {"keep": 0, "drop": 1, "fix": 0}
    monkeypatch.setattr(review_cli, "serve", lambda app, sock: None)
    result = invoke("review", b / "data.parquet", "--scores", b / "scores.parquet", "--decisions",
                    a / "scores.decisions.sqlite", "--port", "0")
    assert result.exit_code == 0, result.output
    assert STALE in result.output


def test_decisions_without_a_row_hash_apply_as_before_and_old_stores_are_upgraded(tmp_path):
    path = old_store(tmp_path / "old.sqlite")
    before = read_decisions(path)
    assert before[["pair_id", "action", "row_hash"]].values.tolist() == [["p1", "fix", None]]
    assert apply_decisions(pairs(), before)["caption"].tolist()[1] == "a reservoir"
    matching, note = match_decisions(pairs(), before)
    assert note is None and matching["pair_id"].tolist() == ["p1"]  # unchecked: nctool kept no row hash then
    with sqlite3.connect(path) as connection:  # reading changed nothing
        assert "row_hash" not in [row[1] for row in connection.execute("PRAGMA table_info(decisions)")]
    connection.close()
    with DecisionStore(path, reviewer="bob") as store:  # writing adds the column; old decisions keep NULL
        store.record("p2", "keep", row_hash=row_hashes(pairs().assign(image_id="i"))[2])
        assert store.current()["row_hash"].isna().tolist() == [True, False]
        store.record_many(["p1"], "drop", rule="1 selected pairs")  # and the bulk actions' column and table
        assert store.current()["batch"].tolist() == ["bulk-3", None]


def test_train_refuses_decisions_on_pairs_not_in_the_data(tmp_path):
    from nctool.config import load_recipe
    from nctool.model.train import train

    write_table(review_data(), tmp_path / "data.parquet")
    with DecisionStore(tmp_path / "d.sqlite", reviewer="ann") as store:
        store.record("p01", "keep")
        store.record("zz", "drop")
    with pytest.raises(NctoolError, match=r"decisions: 1 pair id\(s\) are not in the dataset \(e.g. 'zz'\)"):
        train(tmp_path / "data.parquet", out_dir=tmp_path / "run", recipe=load_recipe("demo"),
              decisions=tmp_path / "d.sqlite")
    assert not (tmp_path / "run").exists()


def test_a_scores_file_or_a_dataset_given_as_decisions_is_named_so(tmp_path):
    data_path, scores_path = write_review_files(tmp_path)
    for path, message in [(scores_path, "a scores file, not a decisions file; pass it as --scores"),
                          (data_path, "not a decisions file (no column 'action', 'new_caption', 'time', 'reviewer')")]:
        with pytest.raises(NctoolError) as error:
            read_decisions(path)
        assert message in str(error.value) and "nctool review --export" in str(error.value)
    result = run_cli("filter", data_path, "--scores", scores_path, "--detector", "rrsitr", "--decisions", scores_path,
                     "--out", tmp_path / "clean.parquet")
    assert result.returncode == 2 and "a scores file, not a decisions file" in result.stderr
    assert "appears more than once" not in result.stderr


# ---- a store that cannot be used: one line naming it and the fix, exit 2 ----

def store_commands(folder: Path, store: Path) -> dict[str, list]:
    """The commands that read or write a decision store, on the review files in `folder`."""
    data, scores = folder / "data.parquet", folder / "scores.parquet"
    return {"filter": ["filter", data, "--scores", scores, "--detector", "rrsitr", "--decisions", store,
                       "--out", folder / "clean.parquet"],
            "train": ["train", data, "--decisions", store, "--out", folder / "run", "--epochs", "1"],
            "review": ["review", data, "--scores", scores, "--decisions", store, "--port", "0"],
            "review --export": ["review", data, "--scores", scores, "--decisions", store, "--export",
                                folder / "out" / "d.parquet"]}


def assert_one_line(result, *parts: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for part in parts:
        assert part in result.stderr, result.stderr


def run_cli_read_only(folder: Path, *args) -> subprocess.CompletedProcess:
    """run_cli with `folder` read-only: by its mode for a user; for root (whom modes do not stop), by a read-only
    bind mount in a mount namespace of the command's own, which ends with it."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            return run_cli(*args)
        finally:
            folder.chmod(0o755)
    if shutil.which("unshare") is None:
        pytest.skip("root, and no unshare to make a read-only folder")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" || exit 97; exec "$@"'
    result = subprocess.run(["unshare", "--mount", "sh", "-c", script, str(folder), sys.executable, "-c",
                             "from nctool.cli import main; main()", *map(str, args)], capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"})
    if result.returncode == 97 or result.stderr.startswith("unshare:"):
        pytest.skip(f"root, and no read-only bind mount here: {result.stderr.strip()}")
    return result


@pytest.fixture
def review_files(tmp_path):
    write_review_files(tmp_path)
    (tmp_path / "out").mkdir()
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("command", ["filter", "train", "review", "review --export"])
def test_a_damaged_store_is_one_line(review_files, command):
    store = review_files / "d.sqlite"
    with DecisionStore(store, reviewer="ann") as decisions:
        for index in range(300):
            decisions.record(f"p{index % 20:02d}", "fix", new_caption=f"caption {index} " * 20)
    content = store.read_bytes()
    store.write_bytes(content[:4096] + bytes(range(256)) * ((len(content) - 4096) // 256))  # first page intact
    result = run_cli(*store_commands(review_files, store)[command])
    assert_one_line(result, f"{store}: damaged", "restore it")


def test_a_new_store_in_a_folder_that_is_not_writable_is_one_line(review_files):
    locked_up = review_files / "shared"
    locked_up.mkdir()
    result = run_cli_read_only(locked_up, *store_commands(review_files, locked_up / "d.sqlite")["review"])
    assert_one_line(result, f"{locked_up / 'd.sqlite'}: cannot", "not writable", "--decisions")
    assert not (locked_up / "d.sqlite").exists()


def test_a_store_in_a_read_only_place_is_read(review_files):
    shelf = review_files / "shelf"
    shelf.mkdir()
    with DecisionStore(shelf / "d.sqlite", reviewer="ann") as store:
        store.record("p04", "drop")
    commands = store_commands(review_files, shelf / "d.sqlite")
    exported = run_cli_read_only(shelf, *commands["review --export"])
    assert exported.returncode == 0, exported.stderr
    assert read_decisions(review_files / "out" / "d.parquet")["pair_id"].tolist() == ["p04"]
    filtered = run_cli_read_only(shelf, *commands["filter"])
    assert filtered.returncode == 0 and "applied 1 decisions" in filtered.stdout, filtered.stderr
    served = run_cli_read_only(shelf, *commands["review"])  # reviewing writes: refused up front
    assert_one_line(served, f"{shelf / 'd.sqlite'}: cannot", "not writable")
    assert sorted(path.name for path in shelf.iterdir()) == ["d.sqlite"]


@pytest.mark.parametrize("command", ["filter", "train", "review", "review --export"])
def test_a_store_held_by_another_process_says_so(review_files, command, monkeypatch):
    store = review_files / "d.sqlite"
    with DecisionStore(store, reviewer="ann") as decisions:
        decisions.record("p04", "drop")
    script = ("import sqlite3, sys, time\nconnection = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
              "connection.execute('PRAGMA locking_mode = EXCLUSIVE')\nconnection.execute('BEGIN EXCLUSIVE')\n"
              "connection.execute(\"UPDATE decisions SET reviewer = 'bob'\")\nprint('held', flush=True)\n"
              "time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(store)], stdout=subprocess.PIPE, text=True)
    monkeypatch.setattr(decisions_module, "LOCK_WAIT_S", 0.5)
    monkeypatch.setattr(review_cli, "serve", lambda app, sock: None)
    try:
        assert holder.stdout.readline() == "held\n"
        result = invoke(*store_commands(review_files, store)[command])
    finally:
        holder.kill()
        holder.wait()
    assert isinstance(result.exception, NctoolError), result.output
    message = str(result.exception)
    assert "\n" not in message and message.startswith(f"{store}: another process holds the decision store")


def test_record_each_is_one_transaction(store):
    made = store.record_each([{"pair_id": "p0", "action": "keep"},
                              {"pair_id": "p1", "action": "fix", "new_caption": "a quay", "reviewer": "bob"}])
    assert [(d["pair_id"], d["reviewer"], d["batch"]) for d in made] == [("p0", "ann", None), ("p1", "bob", None)]
    assert store.get(["p1"])["p1"]["new_caption"] == "a quay"
    with pytest.raises(NctoolError, match="fix without a new caption"):
        store.record_each([{"pair_id": "p2", "action": "drop"}, {"pair_id": "p3", "action": "fix"}])
    assert sorted(store.current()["pair_id"]) == ["p0", "p1"]  # p2 was not recorded either
