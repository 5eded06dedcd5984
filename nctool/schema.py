"""The one table schema every nctool command reads and writes.

One row per image-caption pair. See docs/schema.md for the meaning of each column.
Every write is atomic (temp file in the same folder, then rename), and readers can stream
row groups so memory does not grow with the dataset.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile
import unicodedata
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nctool.errors import NctoolError

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SPLITS = ("train", "val", "test")
LABELS = ("clean", "ambiguous", "noisy")

# Columns every dataset file has.
REQUIRED = {
    "pair_id": pa.string(),    # stable, unique id of the row
    "image_id": pa.string(),   # rows sharing an image share this id
    "image": IMAGE_TYPE,       # Hugging Face convention: {bytes, path}; bytes win when present
    "caption": pa.string(),
    "split": pa.string(),      # train / val / test
}

# Columns that exist only on some files; when present they must have this type.
OPTIONAL = {
    "category": pa.string(),        # scene class, null where unknown
    # written by `nctool inject`
    "noisy": pa.bool_(),            # the caption on this row was written for another image
    "caption_source": pa.string(),  # pair_id whose caption now sits on this row
    "noise_kind": pa.string(),
    "noise_rate": pa.float64(),
    # written by `nctool score` (scores files hold pair_id + these)
    "row_hash": pa.string(),        # schema.row_hashes of the scored row: the image and caption judged
    "reliability": pa.float64(),    # in [0, 1], 1 = surely matched
    "label": pa.string(),           # clean / ambiguous / noisy
    "detector": pa.string(),
    "loss": pa.float64(),           # evidence columns (docs/schema.md, "Scores")
    "loss_std": pa.float64(),
    "similarity": pa.float64(),
    "caption_agreement": pa.float64(),
    "image_agreement": pa.float64(),
    "sibling_agreement": pa.float64(),
    # written by `nctool score --suggest K` on flagged pairs (nctool.detect.suggest), null elsewhere
    "suggested_pair_ids": pa.list_(pa.string()),
    "suggested_captions": pa.list_(pa.string()),
    "suggested_caption_scores": pa.list_(pa.float64()),
    "suggested_image_ids": pa.list_(pa.string()),
    "suggested_image_scores": pa.list_(pa.float64()),
    # written by `nctool filter --decisions` (nctool.data.decisions)
    "decision": pa.string(),          # keep / drop / fix: a person's decision on the pair, null when none
    "caption_original": pa.string(),  # the caption before a person fixed it
}

ALL_COLUMNS = {**REQUIRED, **OPTIONAL}

_UMASK = os.umask(0)
os.umask(_UMASK)

# Key of the Parquet file metadata that records where relative image paths resolve.
IMAGE_ROOT_KEY = b"nctool.image_root"
# Key of a scores file's metadata: each detector's statement of the noise share (and of its clean and noisy
# sets) as JSON {detector: {...}}; docs/schema.md, "Scores".
NOISE_SHARE_KEY = "nctool.noise_share"


def _type_ok(actual: pa.DataType, expected: pa.DataType) -> bool:
    if actual.equals(expected):
        return True
    # large_string / large_binary and dictionary-encoded strings read back equivalently
    if pa.types.is_dictionary(actual):
        actual = actual.value_type
    if expected == pa.string():
        return pa.types.is_string(actual) or pa.types.is_large_string(actual) or pa.types.is_null(actual)
    if pa.types.is_struct(expected) and pa.types.is_struct(actual):
        names = {actual.field(i).name: actual.field(i).type for i in range(actual.num_fields)}
        return all(f.name in names and _type_ok(names[f.name], f.type) for f in expected)
    if expected == pa.binary():
        return pa.types.is_binary(actual) or pa.types.is_large_binary(actual) or pa.types.is_null(actual)
    if expected == pa.float64():
        return pa.types.is_floating(actual)
    return pa.types.is_null(actual)


def check_schema(schema: pa.Schema, source: str, required: dict | None = None) -> None:
    """Raise NctoolError naming the first missing or mistyped column."""
    required = REQUIRED if required is None else required
    for name, expected in required.items():
        if name not in schema.names:
            raise NctoolError(
                f"{source}: missing required column '{name}' ({expected}); "
                f"run `nctool ingest` to convert the data to nctool's schema (docs/schema.md)"
            )
    for name in schema.names:
        expected = ALL_COLUMNS.get(name)
        if expected is not None and not _type_ok(schema.field(name).type, expected):
            raise NctoolError(
                f"{source}: column '{name}' has type {schema.field(name).type}, expected {expected} "
                f"(docs/schema.md)"
            )


def check_splits(splits, what: str = "split") -> list[str]:
    """The requested splits, each once, in the given order; refuses none or an unknown one."""
    splits = list(dict.fromkeys(splits))
    if not splits:
        raise NctoolError(f"{what}: none given; name at least one of {', '.join(SPLITS)}")
    unknown = [split for split in splits if split not in SPLITS]
    if unknown:
        raise NctoolError(f"{what} '{unknown[0]}': unknown; choose from {', '.join(SPLITS)}")
    return splits


def check_frame(df: pd.DataFrame, source: str, required: dict | None = None) -> None:
    """Value checks that types cannot express: unique pair ids, captions, known splits and labels."""
    check_schema(pa.Schema.from_pandas(df, preserve_index=False), source, required)
    if "pair_id" in df:
        check_unique_ids(df["pair_id"].to_numpy(), source)
    check_values(df, source)


# Characters that show nothing: whitespace and separators (Z*), controls (Cc: NUL, ...), format
# characters (Cf: zero-width space and joiners, bidi marks and overrides, BOM, soft hyphen) and the
# other code points Unicode lists as default-ignorable (Hangul fillers, variation selectors, ...).
_BLANK_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
_IGNORABLE = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180D), (0x180F, 0x180F),
              (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0100, 0xE01EF))
# RE2 (pyarrow.compute) for the same set as _blank_char
_BLANK_PATTERN = r"^[\s\p{Z}\p{Cc}\p{Cf}" + "".join(rf"\x{{{a:X}}}-\x{{{b:X}}}" for a, b in _IGNORABLE) + "]*$"


def _blank_char(char: str) -> bool:
    code = ord(char)
    return unicodedata.category(char) in _BLANK_CATEGORIES or any(a <= code <= b for a, b in _IGNORABLE)


def is_blank(text) -> bool:
    """True when `text` shows nothing: null, not a string, or made only of whitespace, control, format
    (zero-width, bidi) and other default-ignorable characters. A caption or a fix that is blank is empty."""
    return not isinstance(text, str) or all(map(_blank_char, text))


def blank_mask(values) -> np.ndarray:
    """is_blank of each value of a column of strings (nulls included), vectorised: one regex in Arrow
    (no copy of pandas' Arrow-backed strings; 1M captions in under 0.1 s)."""
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, from_pandas=True)
    if pa.types.is_dictionary(array.type):  # a categorical column
        array = array.cast(array.type.value_type)
    if pa.types.is_null(array.type):  # no value at all
        array = array.cast(pa.string())
    return pc.match_substring_regex(array, _BLANK_PATTERN).fill_null(True).to_numpy(zero_copy_only=False)


def check_values(df: pd.DataFrame, source: str, whole: bool = True) -> None:
    """The row-by-row value checks of check_frame, which a stream applies to each chunk (`whole` False)."""
    if "caption" in df:
        empty = blank_mask(df["caption"])
        if empty.any():
            where = df["pair_id"].iloc[int(empty.argmax())] if "pair_id" in df else "a row"
            count = f"{int(empty.sum())} in all" if whole else f"{int(empty.sum())} in its batch of {len(df)} rows"
            raise NctoolError(f"{source}: pair '{where}' has an empty or null caption ({count}); "
                              f"re-ingest with `nctool ingest --drop-empty` or fill the captions")
    if "split" in df:
        bad = set(df["split"].dropna().unique()) - set(SPLITS)
        if bad or df["split"].isna().any():
            raise NctoolError(f"{source}: column 'split' has values {sorted(map(str, bad)) or ['null']}; "
                              f"allowed are {', '.join(SPLITS)}")
    if "label" in df:
        bad = set(df["label"].dropna().unique()) - set(LABELS)
        if bad:
            raise NctoolError(f"{source}: column 'label' has values {sorted(bad)}; allowed are {', '.join(LABELS)}")


def row_hash_values(df: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's image_id and caption, as uint64: what a score judged.

    Two versions of a dataset that share pair ids but not captions (say the 20 % and the 40 % noise
    files) differ here, so a scores file can refuse to be applied to the wrong one. Scoring keeps
    these numbers (8 bytes a pair); files hold them as 16 hex digits (row_hashes).
    """
    return np.array([int.from_bytes(hashlib.blake2b(f"{image_id}\0{caption}".encode(), digest_size=8).digest(), "big")
                     for image_id, caption in zip(df["image_id"], df["caption"])], dtype=np.uint64)


def hex_row_hashes(values: np.ndarray) -> np.ndarray:
    """row_hash_values as the 16 hex digits the files hold."""
    return np.array([f"{value:016x}" for value in values.tolist()], dtype=object)


def row_hashes(df: pd.DataFrame) -> np.ndarray:
    """Each row's row hash (row_hash_values) as 16 hex digits, the `row_hash` column of a scores file."""
    return hex_row_hashes(row_hash_values(df))


class Fingerprint:
    """One hash of every row's pair_id, split, row hash and review decision, in file order (the data a
    run trained on), fed a frame at a time so that a file can be streamed."""

    def __init__(self):
        self._digest = hashlib.blake2b(digest_size=16)

    def update(self, df: pd.DataFrame) -> None:
        decisions = df["decision"] if "decision" in df else [None] * len(df)
        for pair_id, split, row, decision in zip(df["pair_id"], df["split"], row_hashes(df), decisions):
            self._digest.update(f"{pair_id}\0{split}\0{row}\0{decision}\n".encode())

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def pair_hashes(pair_ids, seed: int) -> np.ndarray:
    """A 64-bit hash (blake2b) of (seed, pair_id) per pair, as uint64: picks score's reference pool, seeds its
    draws, and records the pairs a model learned (pair_id_hashes)."""
    return np.array([int.from_bytes(hashlib.blake2b(f"{seed}\0{pair_id}".encode(), digest_size=8).digest(), "little")
                     for pair_id in pair_ids], dtype=np.uint64)


def pair_id_hashes(pair_ids) -> np.ndarray:
    """Sorted unique int64 hashes (pair_hashes, seed 0) of a set of pair ids: the train pairs a model learned
    (kept in its checkpoint, 8 bytes a pair), against which `score` counts how many of the pairs it judges the
    model has seen. Two ids share a hash with odds of about n^2 / 2^64."""
    return np.unique(pair_hashes(pair_ids, 0).view(np.int64))


def dataset_fingerprint(df: pd.DataFrame) -> str:
    """The Fingerprint of a whole frame."""
    fingerprint = Fingerprint()
    fingerprint.update(df)
    return fingerprint.hexdigest()


def check_unique_ids(pair_ids: np.ndarray, source: str) -> None:
    """Refuse a pair id that appears more than once (sorts a copy: no Python object per id)."""
    ordered = np.sort(np.asarray(pair_ids, dtype=str))
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(repeated):
        raise NctoolError(f"{source}: pair_id '{repeated[0]}' appears more than once; pair ids must be unique")


def _open(path: str | os.PathLike) -> pq.ParquetFile:
    path = Path(path)
    if not path.exists():
        raise NctoolError(f"{path}: file not found; check the path "
                          "(datasets come from `nctool ingest` or `nctool synth`)")
    if path.is_dir():
        raise NctoolError(f"{path}: is a folder; give the .parquet file inside it")
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise NctoolError(f"{path}: not a readable Parquet file ({exc.__class__.__name__}); "
                          f"give a .parquet written by nctool or convert it with `nctool ingest`") from None


def column_names(path: str | os.PathLike) -> list[str]:
    """The columns a Parquet file holds, read from its footer (no data is read)."""
    return _open(path).schema_arrow.names


def row_group_count(path: str | os.PathLike) -> int:
    """How many row groups a Parquet file holds, read from its footer."""
    return _open(path).num_row_groups


def noise_statements(path: str | os.PathLike) -> dict[str, dict]:
    """What `nctool score` stated per detector in the scores file `path` (NOISE_SHARE_KEY); {} when nothing."""
    meta = _open(path).schema_arrow.metadata or {}
    value = meta.get(NOISE_SHARE_KEY.encode())
    return json.loads(value) if value else {}


def image_root(path: str | os.PathLike) -> Path:
    """Folder that relative image paths in this file resolve against.

    The root recorded in the file's metadata wins; otherwise the file's own folder.
    """
    meta = _open(path).schema_arrow.metadata or {}
    if IMAGE_ROOT_KEY in meta:
        return Path(meta[IMAGE_ROOT_KEY].decode())
    return Path(path).resolve().parent


def read_table(path: str | os.PathLike, columns: list[str] | None = None,
               required: dict | None = None, splits: list[str] | None = None) -> pd.DataFrame:
    """Read a whole file into a DataFrame after checking its schema."""
    pf = _open(path)
    check_schema(pf.schema_arrow, str(path), required)
    df = pf.read(columns=columns).to_pandas()
    if splits:
        df = df[df["split"].isin(splits)].reset_index(drop=True)
    check_frame(df, str(path), {k: v for k, v in (REQUIRED if required is None else required).items()
                                if columns is None or k in columns})
    return df


def iter_batches(path: str | os.PathLike, columns: list[str] | None = None, batch_size: int = 4096,
                 required: dict | None = None, row_groups: list[int] | None = None) -> Iterator[pd.DataFrame]:
    """Stream a file (or only its `row_groups`) as DataFrames of at most batch_size rows (memory stays flat).

    A batch may span row groups; stream one row group at a time where that matters.
    """
    pf = _open(path)
    check_schema(pf.schema_arrow, str(path), required)
    for batch in pf.iter_batches(batch_size=batch_size, columns=columns, row_groups=row_groups):
        frame = batch.to_pandas()
        check_values(frame, str(path), whole=False)
        yield frame


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """DataFrame -> Arrow table with the schema's types for every known column."""
    fields = []
    for name in df.columns:
        typ = ALL_COLUMNS.get(name)
        fields.append(pa.field(name, typ) if typ is not None else None)
    arrays = {}
    for name, field in zip(df.columns, fields):
        col = df[name]
        if field is None:
            arrays[name] = pa.array(col, from_pandas=True)
        else:
            arrays[name] = pa.array(col.tolist() if pa.types.is_struct(field.type) else col,
                                    type=field.type, from_pandas=True)
    return pa.table(arrays)


def check_output(out: str | os.PathLike, *inputs: str | os.PathLike | None, folder: bool = False,
                 overwrite: bool = True) -> Path:
    """Refuse, in one line, an output that cannot be written or would replace something the command needs.

    Every command calls this on each file (or, with `folder`, each folder) it is about to write, before
    doing any work. Refused:
    - a file output that is a folder; a `folder` output that is a file;
    - an output that is one of `inputs`, also through a symbolic or hard link either way (an output
      that is a link to anything else is replaced by the new file; the link's target is left as it
      was), or that lies inside an input that is a folder (the embeddings folder `score` reads);
    - an existing output when `overwrite` is False ("pass --overwrite", as `inject` and `synth`);
    - a place where nothing can be written: the output's folder, or the nearest one that exists, is
      not writable (tried by creating a file there, which also stops root on a read-only mount) or is
      a file.
    """
    out = Path(out)
    if folder and out.exists() and not out.is_dir():
        raise NctoolError(f"{out}: is a file, not a folder; give a folder for the output, e.g. {out.with_suffix('')}")
    if not folder and out.is_dir():
        raise NctoolError(f"{out}: is a folder; give a file path for the output inside it")
    for source in inputs:
        if source is None:
            continue
        source = Path(source)
        if _same_file(out, source):
            raise NctoolError(f"{out}: is also an input of this command and would be replaced; "
                              f"write to another {'folder' if folder else 'file'}")
        if source.is_dir() and out.resolve().is_relative_to(source.resolve()):
            raise NctoolError(f"{out}: is inside {source}, which this command reads; write outside that folder")
    if not overwrite and (out.exists() or out.is_symlink()):
        raise NctoolError(f"{out}: already exists; pass --overwrite to replace it, or give another --out")
    _check_writable(out if folder else out.parent, out)
    return out


def _check_writable(folder: Path, out: Path) -> None:
    """Refuse `out` when its folder, or the nearest one that exists (where it will be created), takes no file."""
    existing = folder
    while not (existing.exists() or existing.is_symlink()) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NctoolError(f"{out}: cannot be written: {existing} is a file, not a folder; give a path in a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".nctool-write-check.", suffix=".tmp", dir=existing)
    except OSError as exc:
        raise NctoolError(f"{out}: cannot write in {existing} ({exc.strerror or exc}); give a path in a folder "
                          f"you can write to") from None
    os.close(fd)
    os.unlink(probe)


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


@contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside dest; rename it onto dest only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for orphan in dest.parent.glob(f".{glob.escape(dest.name)}.*.tmp"):  # left by a killed earlier write
        orphan.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the permissions open() would
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TableWriter:
    """Atomic, streaming Parquet writer: write() DataFrames in row groups, then close().

    Used as a context manager; the destination appears only when the block ends without error.
    `metadata` (str -> str) goes into the Parquet key-value metadata beside the image root.
    """

    def __init__(self, dest: str | os.PathLike, image_root: str | os.PathLike | None = None,
                 row_group_size: int = 4096, metadata: dict[str, str] | None = None):
        self.dest = Path(dest)
        self.image_root = image_root
        self.metadata = metadata or {}
        self.row_group_size = row_group_size
        self._writer: pq.ParquetWriter | None = None
        self._ctx = atomic_path(self.dest)

    def __enter__(self) -> "TableWriter":
        self._tmp = self._ctx.__enter__()
        return self

    def write(self, df: pd.DataFrame) -> None:
        table = to_arrow(df)
        if self._writer is None:
            schema = table.schema.with_metadata({key.encode(): value.encode() for key, value in self.metadata.items()})
            if self.image_root is not None:
                schema = schema.with_metadata({**schema.metadata,
                                               IMAGE_ROOT_KEY: str(Path(self.image_root).resolve()).encode()})
            self._schema = schema
            self._writer = pq.ParquetWriter(self._tmp, schema, compression="zstd")
        self._writer.write_table(table.cast(self._schema), row_group_size=self.row_group_size)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._writer is not None:
            self._writer.close()
        elif exc_type is None:
            err = NctoolError(f"{self.dest}: nothing to write (no rows)")
            self._ctx.__exit__(NctoolError, err, None)  # removes the temp file
            raise err
        return self._ctx.__exit__(exc_type, exc, tb)


def write_table(df: pd.DataFrame, dest: str | os.PathLike, image_root: str | os.PathLike | None = None,
                row_group_size: int = 4096, metadata: dict[str, str] | None = None) -> Path:
    """Write a whole DataFrame atomically (in row groups); `metadata` as in TableWriter."""
    with TableWriter(dest, image_root=image_root, row_group_size=row_group_size, metadata=metadata) as writer:
        writer.write(df)
    return Path(dest)


def write_json(obj, dest: str | os.PathLike) -> Path:
    """Atomic JSON write (configs, summaries)."""
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    return Path(dest)
