"""Curators' review decisions: a durable store, its Parquet export, and applying decisions to a dataset.

A person reviewing a pair decides `keep` (keep it whatever the detector says), `drop` (drop it) or
`fix` (keep it with a corrected caption). `DecisionStore` is an append-only log in SQLite (WAL,
synchronous=FULL, each decision committed before `record` returns, so a killed process loses
nothing that was recorded); the current decision of a pair is its newest one that was not undone
(last write wins, in commit order). `undo` marks a decision undone rather than deleting it, so the
log keeps the whole history. `record_many` records a bulk action (one decision per pair, one
transaction, one `batch` for all, what the person chose in the `batches` table), which one `undo`
takes back whole. Each reviewer's own current decisions are there too (`current(reviewer=...)`,
`by_reviewer=True`): a blind second review and two reviewers' agreement read them. One store may be
shared by the threads of a server (one connection, guarded by a lock) and by several processes
(SQLite serialises the writes). A process opens a store once: a second open of the same file in a
process that holds it open would drop that process's POSIX locks (SQLite's WAL then vanishes under
it), so the holder exports through `DecisionStore.export`.

Each decision carries the `row_hash` (nctool.schema.row_hashes) of the row the person judged, so a
decision is never put on another version of the pair (another noise file of the same base data):
`match_decisions` is the one check, run by `nctool filter`, `nctool train` and `nctool review`
before they apply decisions. Stores and exports of before the row hash read with a null one.

`export_decisions` writes the current decisions to Parquet, `read_decisions` reads either form
(opening a store read-only), and `apply_decisions` puts them on a dataset.
docs/schema.md, "Review decisions", describes the columns.
"""

from __future__ import annotations

import getpass
import os
import re
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nctool.errors import NctoolError
from nctool.schema import atomic_path, check_output, column_names, is_blank, read_table, row_hashes

ACTIONS = ("keep", "drop", "fix")
"""What a person may decide about a pair (the one home of this vocabulary)."""

DECISION_COLUMNS = ("pair_id", "action", "new_caption", "time", "reviewer", "row_hash", "batch")
"""Columns of a decision: of `DecisionStore.current()` and of an exported decisions Parquet. `row_hash`
is null on decisions recorded before nctool kept it (they apply unchecked); `batch` names the bulk
action a decision was part of (`DecisionStore.record_many`), null on a decision of its own."""

LOCK_WAIT_S = 10.0
"""How long a store operation waits for another process's lock before it gives up (a `nctool review`
writing to the store holds it for milliseconds)."""

_OPTIONAL_COLUMNS = ("row_hash", "batch")  # a decisions table of an earlier nctool lacks them
_REQUIRED_COLUMNS = tuple(name for name in DECISION_COLUMNS if name not in _OPTIONAL_COLUMNS)
_ROW_HASH = re.compile(r"[0-9a-f]{16}")
_ARROW_SCHEMA = pa.schema([(name, pa.string()) for name in DECISION_COLUMNS])
_SCORES_COLUMNS = {"reliability", "label", "detector"}  # what tells a scores file passed as decisions
_SQLITE_MAGIC = b"SQLite format 3\x00"
_PARQUET_MAGIC = b"PAR1"
# the optional columns last: an older store gains them by ALTER TABLE
_LOG_COLUMNS = ("seq", *_REQUIRED_COLUMNS, "undone", *_OPTIONAL_COLUMNS)
_CREATE_LOG = """
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY,   -- commit order: the newest decision of a pair is its current one
    pair_id TEXT NOT NULL,
    action TEXT NOT NULL,
    new_caption TEXT,          -- the corrected caption of a fix, NULL otherwise
    time TEXT NOT NULL,        -- ISO-8601 UTC
    reviewer TEXT NOT NULL,
    undone TEXT,               -- ISO-8601 UTC time the decision was undone; NULL while it stands
    row_hash TEXT,             -- schema.row_hashes of the row judged; NULL on decisions of before it was kept
    batch TEXT                 -- the bulk action (table batches) the decision was part of; NULL: its own
);
CREATE INDEX IF NOT EXISTS decisions_by_pair ON decisions (pair_id, seq);
"""
_CREATE_BATCHES = """
CREATE TABLE IF NOT EXISTS batches (
    batch TEXT PRIMARY KEY,    -- what the batch column of its decisions holds
    time TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    action TEXT NOT NULL,
    pairs INTEGER NOT NULL,    -- how many decisions it recorded
    rule TEXT NOT NULL         -- what the person chose, in words (the filter and cut, or "N selected pairs")
);
"""
_CURRENT = (f"SELECT {', '.join(DECISION_COLUMNS)} FROM decisions WHERE seq IN "
            "(SELECT MAX(seq) FROM decisions WHERE undone IS NULL{where} GROUP BY pair_id{group}) ORDER BY pair_id")
_INSERT = (f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(DECISION_COLUMNS))})")
_IDS_PER_QUERY = 500  # below SQLite's limit on bound parameters


def default_decisions_path(scores_path: str | os.PathLike) -> Path:
    """Where the decisions on a scores file live: beside it, `scores.parquet` -> `scores.decisions.sqlite`."""
    scores_path = Path(scores_path)
    return scores_path.with_name(f"{scores_path.stem}.decisions.sqlite")


class DecisionStore:
    """The decisions of the people reviewing one dataset: an append-only SQLite log (module docstring).

    Parameters
    ----------
    path
        The SQLite file; created (with its folder) when missing. An existing file must be a decision store.
    reviewer
        Who records decisions through this store, unless `record` names someone; None: the OS user.

    Use it as a context manager, or call `close`.
    """

    def __init__(self, path: str | os.PathLike, *, reviewer: str | None = None):
        self.path = Path(path)
        self.reviewer = _os_user() if reviewer is None else reviewer
        self._lock = threading.Lock()
        self._connection = _connect(self.path)

    def __enter__(self) -> "DecisionStore":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def record(self, pair_id: str, action: str, *, new_caption: str | None = None,
               reviewer: str | None = None, row_hash: str | None = None) -> dict:
        """Append a decision; it is on disk when this returns.

        Parameters
        ----------
        pair_id
            The pair decided on.
        action
            One of ACTIONS.
        new_caption
            The corrected caption: required (non-empty) for `fix`, refused for `keep` and `drop`.
        reviewer
            Who decided; None: the store's reviewer.
        row_hash
            The row hash (nctool.schema.row_hashes) of the pair as the person saw it; None: unknown
            (the decision then applies to any version of the pair).

        Returns the decision: `pair_id`, `action`, `new_caption`, `time` (ISO-8601 UTC), `reviewer`, `row_hash`,
        `batch` (None: a decision of its own).
        """
        return self.record_each([{"pair_id": pair_id, "action": action, "new_caption": new_caption,
                                  "reviewer": reviewer, "row_hash": row_hash}])[0]

    def record_each(self, decisions: Sequence[dict]) -> list[dict]:
        """Append several decisions of their own (each a dict of `record`'s arguments: `pair_id`, `action`,
        optional `new_caption`, `reviewer`, `row_hash`) in one transaction: all on disk when this returns,
        or none (an import is never half applied). Returns them as `record` does, in order."""
        time = _now()
        made = [{"pair_id": decision["pair_id"], "action": decision["action"],
                 "new_caption": decision.get("new_caption"), "time": time,
                 "reviewer": self.reviewer if decision.get("reviewer") is None else decision["reviewer"],
                 "row_hash": decision.get("row_hash"), "batch": None} for decision in decisions]
        for decision in made:
            _check_decision(decision, "decision")
        with self._transaction() as connection:
            connection.executemany(_INSERT, [tuple(decision.values()) for decision in made])
        return made

    def record_many(self, pair_ids: Sequence[str], action: str, *, rule: str,
                    row_hashes: Sequence[str | None] | None = None, reviewer: str | None = None) -> dict:
        """Append one bulk action: the same `action` (keep or drop) on every pair of `pair_ids`, in one
        transaction (all on disk when this returns, or none), the decisions sharing one `batch`.

        `rule` says in words what the person chose (the filter and cut, or "12 selected pairs"); the
        table `batches` keeps it with the time, reviewer, action and count, so the log tells what a bulk
        action covered. `undo` takes a bulk action back whole. Returns the batch as a dict (`batch`,
        `time`, `reviewer`, `action`, `pairs`, `rule`).
        """
        pair_ids = list(pair_ids)
        if action == "fix":
            raise NctoolError("bulk action 'fix': a fix needs its own caption; fix pairs one at a time")
        if not pair_ids:
            raise NctoolError("bulk action: no pairs; select pairs, or loosen the rule")
        if len(set(pair_ids)) != len(pair_ids):
            raise NctoolError("bulk action: a pair is listed twice; give each pair once")
        hashes = [None] * len(pair_ids) if row_hashes is None else list(row_hashes)
        time, who = _now(), self.reviewer if reviewer is None else reviewer
        decisions = [{"pair_id": pair_id, "action": action, "new_caption": None, "time": time, "reviewer": who,
                      "row_hash": row_hash} for pair_id, row_hash in zip(pair_ids, hashes, strict=True)]
        for decision in decisions:
            _check_decision(decision, "bulk action")
        with self._transaction() as connection:
            (last,) = connection.execute("SELECT COALESCE(MAX(seq), 0) FROM decisions").fetchone()
            batch = {"batch": f"bulk-{last + 1}", "time": time, "reviewer": who, "action": action,
                     "pairs": len(decisions), "rule": rule}
            connection.execute(f"INSERT INTO batches ({', '.join(batch)}) VALUES ({', '.join('?' * len(batch))})",
                               tuple(batch.values()))
            connection.executemany(_INSERT, [(*decision.values(), batch["batch"]) for decision in decisions])
        return batch

    def undo(self, pair_id: str | None = None, *, reviewer: str | None = None) -> list[str]:
        """Undo the newest standing decision of `pair_id` (None: of any pair) by `reviewer` (None: anyone);
        when it was part of a bulk action, undo the whole bulk action.

        Returns the pairs whose decision was undone ([] when there was nothing to undo); their current
        decision is now their previous standing one, if any (`get`).
        """
        where, parameters = _where(pair_id=pair_id, reviewer=reviewer)
        with self._transaction() as connection:
            newest = connection.execute(f"SELECT seq, pair_id, batch FROM decisions WHERE undone IS NULL{where} "
                                        "ORDER BY seq DESC LIMIT 1", parameters).fetchone()
            if newest is None:
                return []
            seq, newest_pair, batch = newest
            if batch is None:
                connection.execute("UPDATE decisions SET undone = ? WHERE seq = ?", (_now(), seq))
                return [newest_pair]
            pairs = [row[0] for row in connection.execute(
                "SELECT pair_id FROM decisions WHERE batch = ? AND undone IS NULL ORDER BY seq", (batch,))]
            connection.execute("UPDATE decisions SET undone = ? WHERE batch = ? AND undone IS NULL", (_now(), batch))
        return pairs

    def current(self, *, reviewer: str | None = None, by_reviewer: bool = False) -> pd.DataFrame:
        """The current decision of each decided pair, sorted by pair_id (columns DECISION_COLUMNS).

        With `reviewer`, the current decisions of that reviewer alone (what a blind review shows them);
        with `by_reviewer`, each reviewer's current decision of each pair (a row per pair and reviewer).
        """
        where, parameters = _where(reviewer=reviewer)
        with self._lock, _store_errors(self.path):
            return _current(self._connection, where, parameters, by_reviewer=by_reviewer)

    def export(self, out: str | os.PathLike) -> Path:
        """Write the current decisions to Parquet (as `export_decisions`) through this store's own connection.

        What the process holding the store open must use: opening the file again there would drop its locks.
        """
        check_output(out, self.path)
        return _write_decisions(self.current(), out)

    def get(self, pair_ids: Sequence[str], *, reviewer: str | None = None) -> dict[str, dict]:
        """The current decision of each of `pair_ids` that has one (by `reviewer`; None: anyone), by pair_id."""
        pair_ids = list(dict.fromkeys(pair_ids))
        found, (where, parameters) = {}, _where(reviewer=reviewer)
        with self._lock, _store_errors(self.path):
            for start in range(0, len(pair_ids), _IDS_PER_QUERY):
                chunk = pair_ids[start:start + _IDS_PER_QUERY]
                query = _CURRENT.format(where=f"{where} AND pair_id IN ({', '.join('?' * len(chunk))})", group="")
                found.update({row[0]: dict(zip(DECISION_COLUMNS, row))
                              for row in self._connection.execute(query, (*parameters, *chunk))})
        return found

    def counts(self) -> dict[str, int]:
        """How many pairs currently carry each action (every action of ACTIONS, zeros included)."""
        with self._lock, _store_errors(self.path):
            rows = dict(self._connection.execute(
                f"SELECT action, COUNT(*) FROM ({_CURRENT.format(where='', group='')}) GROUP BY action").fetchall())
        return {action: rows.get(action, 0) for action in ACTIONS}

    def batches(self) -> pd.DataFrame:
        """Every bulk action recorded, oldest first, with how many of its decisions still stand (`standing`)."""
        with self._lock, _store_errors(self.path):
            rows = self._connection.execute(
                "SELECT b.batch, b.time, b.reviewer, b.action, b.pairs, b.rule, COUNT(d.seq) FROM batches b "
                "LEFT JOIN decisions d ON d.batch = b.batch AND d.undone IS NULL GROUP BY b.batch ORDER BY b.time, "
                "b.rowid").fetchall()
        return pd.DataFrame(rows, columns=["batch", "time", "reviewer", "action", "pairs", "rule", "standing"])

    def close(self) -> None:
        """Close the connection (every recorded decision is already on disk)."""
        with self._lock:
            self._connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed (durably) when the block ends, rolled back on error."""
        with self._lock, _store_errors(self.path):
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")


def export_decisions(store_path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the current decisions of a store to Parquet (atomically; columns DECISION_COLUMNS).

    Parameters
    ----------
    store_path
        The decision store (.sqlite) to export.
    out
        The Parquet file to write; neither a folder nor the store itself.
    """
    check_output(out, store_path)
    return _write_decisions(read_decisions(store_path), out)


def _write_decisions(decisions: pd.DataFrame, out: str | os.PathLike) -> Path:
    table = pa.Table.from_pandas(decisions[list(DECISION_COLUMNS)], schema=_ARROW_SCHEMA, preserve_index=False)
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return Path(out)


def read_decisions(path: str | os.PathLike, *, by_reviewer: bool = False) -> pd.DataFrame:
    """The current decisions in a decision store (.sqlite) or in its Parquet export (`export_decisions`).

    With `by_reviewer`, each reviewer's current decision of each pair from a store (a Parquet export
    holds one decision per pair, so it reads the same either way).

    Returns one row per decided pair, columns DECISION_COLUMNS (`row_hash` null where the file has
    none). A store is opened read-only, so one in a read-only place reads too. Raises NctoolError for a
    missing file, a folder, a file of another kind, a Parquet file that is not a decisions table (a
    scores file is named as one), or a store that is damaged or held by another process.
    """
    path = Path(path)
    if path.is_dir():
        raise NctoolError(f"{path}: is a folder; give the decision store (.sqlite) or its Parquet export")
    if not path.exists():
        raise NctoolError(f"{path}: file not found; give the decision store (.sqlite) that `nctool review` "
                          f"wrote, or its Parquet export")
    with path.open("rb") as file:
        magic = file.read(len(_SQLITE_MAGIC))
    if magic == _SQLITE_MAGIC:
        connection = _connect(path, read_only=True)
        try:
            with _store_errors(path):
                return _current(connection, by_reviewer=by_reviewer)
        finally:
            connection.close()
    if magic.startswith(_PARQUET_MAGIC):
        present = column_names(path)
        missing = [name for name in _REQUIRED_COLUMNS if name not in present]
        if missing and _SCORES_COLUMNS <= set(present):
            raise NctoolError(f"{path}: a scores file, not a decisions file; pass it as --scores, and as --decisions "
                              f"the .sqlite store `nctool review` wrote, or its export (`nctool review --export`)")
        if missing:
            raise NctoolError(f"{path}: not a decisions file (no column {', '.join(map(repr, missing))}); pass the "
                              f".sqlite store `nctool review` wrote, or its export (`nctool review --export`)")
        decisions = read_table(path, required={})
        _check_decisions(decisions, str(path))
        for name in _OPTIONAL_COLUMNS:  # an export of an earlier nctool
            if name not in decisions:
                decisions[name] = None
        decisions = decisions[list(DECISION_COLUMNS)].astype(object)
        return decisions.where(decisions.notna(), None).reset_index(drop=True)  # None where missing, as in a store
    raise NctoolError(f"{path}: neither a decision store (SQLite) nor a Parquet file; give the .sqlite that "
                      f"`nctool review` wrote, or its Parquet export")


def match_decisions(frame: pd.DataFrame, decisions: pd.DataFrame, *,
                    others: str = "refuse") -> tuple[pd.DataFrame, str | None]:
    """The decisions that were made on `frame`'s rows, and one line on those that were not (None: all were).

    The one check `nctool filter`, `train` and `review` run before they apply decisions (`apply_decisions`).

    Parameters
    ----------
    frame
        Pairs with `pair_id`, `image_id` and `caption` (and `caption_original`, in a file fixed before).
    decisions
        Current decisions (`read_decisions`, `DecisionStore.current`).
    others
        Decisions on pairs that are not in `frame`: "refuse" (NctoolError: the decisions were made on
        another dataset) or "skip" (left out: a store shared by reviews of several datasets).

    A decision whose `row_hash` is not the row hash of its pair in `frame` (before a fix, when the
    row was fixed: the row the person saw) was made on another version of the pair: it is left out
    and counted in the returned line, which says what to do. A decision without a row hash (recorded
    before nctool kept one) applies unchecked.
    """
    _check_decisions(decisions, "decisions")
    if others == "refuse":
        _refuse_unknown(frame, decisions)
    else:
        decisions = decisions[decisions["pair_id"].isin(frame["pair_id"])]
    recorded = (decisions["row_hash"] if "row_hash" in decisions else
                pd.Series(None, index=decisions.index, dtype=object)).to_numpy(dtype=object)
    checked = ~pd.isna(recorded)
    if not checked.any():
        return decisions.reset_index(drop=True), None
    rows = frame[frame["pair_id"].isin(decisions["pair_id"].to_numpy()[checked])]
    judged = set(zip(rows["pair_id"], row_hashes(rows)))
    if "caption_original" in rows:
        fixed = rows[rows["caption_original"].notna()]
        judged |= set(zip(fixed["pair_id"], row_hashes(fixed.assign(caption=fixed["caption_original"]))))
    stale = checked & np.array([(pair_id, row_hash) not in judged for pair_id, row_hash in
                                zip(decisions["pair_id"], recorded)], dtype=bool)
    note = None
    if stale.any():
        note = (f"decisions: {int(stale.sum())} decision(s) were made on another version of their pair (its image "
                f"or caption has changed since, e.g. '{decisions['pair_id'].to_numpy()[stale][0]}') and were not "
                f"applied; review those pairs again on this dataset (nctool review), or give the dataset the "
                f"decisions were made on")
    return decisions[~stale].reset_index(drop=True), note


def apply_decisions(frame: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with people's decisions on it (check them with `match_decisions` first).

    Parameters
    ----------
    frame
        Pairs in nctool's schema.
    decisions
        Current decisions (`read_decisions`, `DecisionStore.current`): one row per pair, columns DECISION_COLUMNS.

    The copy has a `decision` column (the action, None where undecided; an earlier `decision`
    column is replaced). A fixed pair's `caption` becomes the new caption and `caption_original`
    holds the text before the fix (the text before the first fix, when `frame` was fixed before);
    `caption_original` is None on pairs never fixed. Raises NctoolError for an invalid decisions
    table or decisions on pairs that are not in `frame`.
    """
    _check_decisions(decisions, "decisions")
    _refuse_unknown(frame, decisions)
    by_pair = decisions.set_index("pair_id")
    action = frame["pair_id"].map(by_pair["action"])
    fixed = (action == "fix").to_numpy()
    caption = frame["caption"].to_numpy(dtype=object).copy()
    original = (frame["caption_original"].to_numpy(dtype=object).copy() if "caption_original" in frame
                else np.full(len(frame), None, dtype=object))
    original[pd.isna(original)] = None
    first_fix = fixed & pd.isna(original)
    original[first_fix] = caption[first_fix]
    caption[fixed] = frame["pair_id"][fixed].map(by_pair["new_caption"]).to_numpy(dtype=object)
    out = frame.copy()
    out["caption"] = caption
    # object columns keep None where there is none (pandas would infer a string dtype holding NaN)
    out["decision"] = pd.Series(action.astype(object).where(action.notna(), None), index=out.index, dtype=object)
    out["caption_original"] = pd.Series(original, index=out.index, dtype=object)
    return out


def _refuse_unknown(frame: pd.DataFrame, decisions: pd.DataFrame) -> None:
    """Refuse decisions on pairs that are not in `frame` (what filter and train do alike)."""
    unknown = ~decisions["pair_id"].isin(frame["pair_id"])
    if unknown.any():
        raise NctoolError(f"decisions: {int(unknown.sum())} pair id(s) are not in the dataset (e.g. "
                          f"'{decisions.loc[unknown, 'pair_id'].iloc[0]}'); "
                          "give the dataset the decisions were made on")


def _check_decision(decision: dict, source: str) -> None:
    """Refuse an unknown action, a fix without a new caption, a new caption on keep/drop, no pair or reviewer."""
    pair_id, action, new_caption = decision["pair_id"], decision["action"], decision["new_caption"]
    if not isinstance(pair_id, str) or not pair_id:
        raise NctoolError(f"{source}: pair_id {pair_id!r} is not a pair id; give the pair's `pair_id`")
    if action not in ACTIONS:
        raise NctoolError(f"{source} on pair '{pair_id}': action {action!r} is unknown; "
                          f"choose from {', '.join(ACTIONS)}")
    has_caption = not is_blank(new_caption)  # zero-width, bidi and control characters alone are no caption
    if action == "fix" and not has_caption:
        raise NctoolError(f"{source} on pair '{pair_id}': fix without a new caption; give the corrected caption "
                          f"as new_caption")
    if action != "fix" and not pd.isna(new_caption):
        raise NctoolError(f"{source} on pair '{pair_id}': a new caption comes only with action 'fix', not "
                          f"'{action}'; record 'fix' to correct the caption")
    if not isinstance(decision["reviewer"], str) or not decision["reviewer"].strip():
        raise NctoolError(f"{source} on pair '{pair_id}': no reviewer; name who decided (reviewer=...)")
    row_hash = decision.get("row_hash")
    if not pd.isna(row_hash) and not (isinstance(row_hash, str) and _ROW_HASH.fullmatch(row_hash)):
        raise NctoolError(f"{source} on pair '{pair_id}': row_hash {row_hash!r} is not a row hash (16 hex digits, "
                          f"nctool.schema.row_hashes); give the row hash of the pair decided on, or none")


def _check_decisions(decisions: pd.DataFrame, source: str) -> None:
    """Refuse a table that lacks a column of DECISION_COLUMNS (but row_hash), repeats a pair or holds an
    invalid decision."""
    missing = [name for name in _REQUIRED_COLUMNS if name not in decisions]
    if missing:
        raise NctoolError(f"{source}: not a decisions table (no column '{missing[0]}'); give a decision store "
                          f"(.sqlite) or its export (nctool.data.decisions.export_decisions)")
    repeated = decisions["pair_id"].duplicated()
    if repeated.any():
        raise NctoolError(f"{source}: pair '{decisions.loc[repeated, 'pair_id'].iloc[0]}' has several decisions; "
                          f"give the current decisions, one per pair (DecisionStore.current)")
    for decision in decisions[[name for name in DECISION_COLUMNS if name in decisions]].to_dict("records"):
        _check_decision(decision, source)


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """Open the store at `path`: for writing (created when new; WAL journal, synchronous=FULL,
    autocommit; a store of an earlier nctool gains the columns it lacks), or `read_only` (an existing store,
    wherever it lies: nothing is written, not even the journal files where the folder forbids them)."""
    if path.is_dir():
        raise NctoolError(f"{path}: is a folder; give a file path for the decision store, e.g. "
                          f"{path / 'scores.decisions.sqlite'}")
    if path.exists() and path.stat().st_size:
        with path.open("rb") as file:
            if file.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
                raise NctoolError(f"{path}: not a SQLite file, so not a decision store; give another path")
    connection = None
    try:
        if read_only:
            connection, tables = _open_read_only(path)
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise NctoolError(f"{path}: cannot create its folder ({exc.strerror}); pass --decisions with a "
                                  f"file in a folder you can write to") from None
            if path.exists() and not os.access(path, os.W_OK):  # SQLite would open it read-only and fail later
                raise NctoolError(f"{path}: cannot write the decision store (the file is not writable); pass "
                                  f"--decisions with a file in a folder you can write to")
            connection = sqlite3.connect(path, timeout=LOCK_WAIT_S, isolation_level=None, check_same_thread=False)
            tables = _tables(connection)
            if not tables:
                connection.executescript(_CREATE_LOG)
        columns = tuple(row[1] for row in connection.execute("PRAGMA table_info(decisions)"))
        # checked before anything changes another program's database
        known = len(_LOG_COLUMNS) - len(_OPTIONAL_COLUMNS)
        if columns[:known] != _LOG_COLUMNS[:known] or columns != _LOG_COLUMNS[:len(columns)]:
            raise NctoolError(f"{path}: a SQLite database but not a decision store (no table 'decisions' with "
                              f"columns {', '.join(_LOG_COLUMNS)}); give another path")
        lacking = _LOG_COLUMNS[len(columns):]  # a store of an earlier nctool: its decisions have none of these
        if read_only:
            if lacking:
                nulls = ", ".join(f"NULL AS {name}" for name in lacking)
                connection.execute(f"CREATE TEMP VIEW decisions AS SELECT *, {nulls} FROM main.decisions")
        else:
            for name in lacking:
                _add_column(connection, name)
            connection.executescript(_CREATE_BATCHES)
        if not read_only:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = FULL")
    except NctoolError:
        if connection is not None:
            connection.close()
        raise
    except sqlite3.DatabaseError as exc:
        if connection is not None:
            connection.close()
        raise _store_error(path, exc) from None
    return connection


def _open_read_only(path: Path) -> tuple[sqlite3.Connection, set[str]]:
    """A read-only connection to an existing store, and its tables.

    A WAL store needs its -shm file, which SQLite cannot create in a read-only folder; there, a store
    without a journal to replay (no -wal, or an empty one: closed cleanly) is read as immutable.
    """
    uri = path.absolute().as_uri()
    connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=LOCK_WAIT_S, isolation_level=None,
                                 check_same_thread=False)
    try:
        return connection, _tables(connection)
    except sqlite3.OperationalError as exc:
        connection.close()
        wal = path.with_name(path.name + "-wal")
        if "unable to open" not in str(exc):
            raise
        if wal.exists() and wal.stat().st_size:
            raise NctoolError(f"{path}: cannot be read here: its journal {wal.name} needs a -shm file beside it and "
                              f"the folder is read-only; copy the store with its -wal file to a folder you can "
                              f"write to and pass that copy") from None
    connection = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None,
                                 check_same_thread=False)
    try:
        return connection, _tables(connection)
    except BaseException:
        connection.close()
        raise


def _tables(connection: sqlite3.Connection) -> set[str]:
    return {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _add_column(connection: sqlite3.Connection, name: str) -> None:
    """Give a store of an earlier nctool a column (NULL on its decisions); another process may race us to it."""
    try:
        connection.execute(f"ALTER TABLE decisions ADD COLUMN {name} TEXT")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise


@contextmanager
def _store_errors(path: Path) -> Iterator[None]:
    """Turn SQLite's errors on the store at `path` into one line naming it (`_store_error`)."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise _store_error(path, exc) from None


def _store_error(path: Path, exc: sqlite3.DatabaseError) -> NctoolError:
    """What went wrong with the store at `path`, and what to do, as one line."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return NctoolError(f"{path}: another process holds the decision store (still locked after {LOCK_WAIT_S:g} s; "
                           f"`nctool review` holds it for milliseconds at a time); let that process finish or stop "
                           f"it, then run again")
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return NctoolError(f"{path}: damaged, not a readable decision store ({text}); restore it from a copy or from "
                           f"its export (`nctool review --export`), or pass another --decisions")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return NctoolError(f"{path}: cannot write the decision store there ({text}: the folder is not writable); "
                           f"pass --decisions with a file in a folder you can write to")
    return NctoolError(f"{path}: cannot be used as a decision store ({text}); pass another --decisions")


def _current(connection: sqlite3.Connection, where: str = "", parameters: tuple = (), *,
             by_reviewer: bool = False) -> pd.DataFrame:
    """The current decision of each decided pair in the store (`where`: of some decisions only; `by_reviewer`:
    of each pair and reviewer), sorted by pair_id."""
    query = _CURRENT.format(where=where, group=", reviewer" if by_reviewer else "")
    rows = connection.execute(query, parameters).fetchall()
    return pd.DataFrame(rows, columns=list(DECISION_COLUMNS), dtype=object)


def _where(*, pair_id: str | None = None, reviewer: str | None = None) -> tuple[str, tuple]:
    """The SQL conditions (after `undone IS NULL`) and parameters that pick one pair's or reviewer's decisions."""
    chosen = {name: value for name, value in (("pair_id", pair_id), ("reviewer", reviewer)) if value is not None}
    return "".join(f" AND {name} = ?" for name in chosen), tuple(chosen.values())


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        raise NctoolError("reviewer: the OS user is unknown; name the reviewer (reviewer=...)") from None


def _now() -> str:
    """The current time, ISO-8601 UTC with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
