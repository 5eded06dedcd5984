"""Convert remote-sensing image-caption datasets (RSITMD, RSICD, NWPU-Captions) to nctool's table.

Source formats (FORMATS), detected from the file unless named:
- karpathy: a Karpathy-style JSON (dataset_rsitmd.json) plus an image folder;
- rrsitr:   the RRSITR reference CSVs (filename,title; one file per split, paths from another machine);
- parquet:  a Parquet with the Hugging Face image struct and a caption column;
- folder:   a folder of images plus a CSV or JSONL of file,caption (optional split column).
Each reader yields rows of (name, image, caption, split, where), image paths as the source names
them (relative to the reader's root, or absolute); one common path then locates the images, assigns
ids, categories and splits, and checks captions and images (docs/schema.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path, PureWindowsPath

import pandas as pd

from nctool.data import images
from nctool.errors import NctoolError
from nctool.progress import Progress, silent
from nctool.schema import SPLITS, blank_mask, check_frame, check_output, check_splits, read_table, write_table

FORMATS = ("karpathy", "rrsitr", "parquet", "folder")
FORMAT_CHOICES = ("auto", *FORMATS)
# Files each format reads from a folder given as the source.
SUFFIXES = {"karpathy": (".json",), "rrsitr": (".csv",), "parquet": (".parquet",), "folder": (".csv", ".jsonl")}
SUFFIXES["auto"] = tuple(sorted({s for suffixes in SUFFIXES.values() for s in suffixes}))
CAPTION_COLUMNS = ("caption", "text", "title", "sentence")
# Split names seen in the wild; Karpathy files put some training images in "restval".
SPLIT_NAMES = {"train": "train", "restval": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test"}
FRONT = ["pair_id", "image_id", "image", "caption", "split", "category"]


def category_of(filename: str) -> str | None:
    """Scene class a file name encodes: 'airport_12.tif' -> 'airport', '00001.jpg' -> None."""
    head, sep, number = Path(filename).stem.rpartition("_")
    if sep and number.isdigit() and any(c.isalpha() for c in head):
        return head
    return None


def dataset_name(path: Path) -> str:
    """Default dataset name from a file or folder name: 'dataset_RSITMD.json' -> 'rsitmd'."""
    words = [w for w in re.split(r"[^a-z0-9]+", path.stem.lower()) if w and w != "dataset" and w not in SPLIT_NAMES]
    return "_".join(words) or path.absolute().parent.name.lower() or "data"


def ingest(sources: list[str | os.PathLike], *, out: str | os.PathLike, fmt: str = "auto", name: str | None = None,
           image_root: str | os.PathLike | None = None, embed: bool = False, check_images: bool = False,
           skip_bad_images: bool = False, drop_empty: bool = False, allow_outside_root: bool = False,
           caption_column: str | None = None, split: str | None = None, progress: Progress = silent) -> dict:
    """Read the sources into one table in nctool's schema, write it to `out`, and return a summary.

    Image paths inside the image root are stored relative to it (the root goes into the file's
    metadata), so a moved image folder only needs `--image-root`; other paths stay absolute.

    Parameters
    ----------
    sources
        Caption files, or folders holding them.
    out
        The Parquet file to write (atomically); refused when it is a folder or one of the inputs.
    fmt
        One of FORMAT_CHOICES; "auto" detects each file's format.
    name
        Dataset name in the ids (default: from the file or folder name).
    image_root
        Folder holding the images (default: each format's own guess beside the caption file).
    embed
        Store the image bytes in the file; implies checking that every image decodes.
    check_images
        Decode every image; refuse missing or corrupt ones.
    skip_bad_images
        Check images and drop the pairs of missing or corrupt ones instead.
    drop_empty
        Drop pairs with an empty caption instead of refusing them.
    allow_outside_root
        Accept relative image paths that climb out of the image root (``..``).
    caption_column
        The caption column of a table (default: the first of CAPTION_COLUMNS present).
    split
        The split of rows whose source names none (default: train).
    progress
        Called as work advances (nctool.progress).
    """
    if fmt not in FORMAT_CHOICES:
        raise NctoolError(f"--format {fmt}: unknown format; use {', '.join(FORMAT_CHOICES)}")
    if split is not None:
        check_splits([split], "--split")
    if image_root is not None:
        image_root = Path(os.path.abspath(image_root))
        if not image_root.is_dir():
            raise NctoolError(f"--image-root {image_root}: folder not found; give the folder that holds the images")
    label = ", ".join(map(str, sources))
    tables = _tables([Path(s) for s in sources], fmt)
    out = check_output(out, *(table for table, _ in tables))

    parts, roots, datasets = [], [], set()
    for table, table_fmt in tables:
        part, root = READERS[table_fmt](table, image_root, caption_column)
        if part.empty:
            continue
        root = Path(os.path.abspath(root))
        # a plain folder of images is named after its folder, the other formats after their file
        dataset = name or dataset_name(table.parent if table_fmt == "folder" else table)
        parts.append(_with_ids(part.assign(image=_located(part, root, allow_outside_root)), dataset))
        roots.append(root)
        datasets.add(dataset)
    if not parts:
        raise NctoolError(f"{label}: no rows (no captions found); give the dataset's caption file")
    df = pd.concat(parts, ignore_index=True)
    root = image_root or roots[0]

    df["split"] = _splits(df, split)
    df["caption"] = df["caption"].fillna("").astype(str).str.strip()
    empty = pd.Series(blank_mask(df["caption"]), index=df.index)  # zero-width, bidi, NUL alone: empty too
    if empty.any() and not drop_empty:
        more = f" (and {empty.sum() - 1} more)" if empty.sum() > 1 else ""
        raise NctoolError(f"{df.loc[empty, 'where'].iloc[0]}: empty caption{more}; "
                          f"fix the source or pass --drop-empty to drop such pairs")
    df = df[~empty]
    _check_ids(df)

    # embedding copies bytes into the dataset, so only what decodes as an image may go in
    checked = check_images or skip_bad_images or embed
    problems = []
    if checked:
        first = df.drop_duplicates("image_id")
        problems = images.check_images(zip(first["image_id"], first["image"]), root, progress)
    missing = sum(problem.startswith(images.MISSING) for _, problem in problems)
    if problems and not skip_bad_images:
        raise NctoolError(_bad_images_message(problems, missing, df["image_id"].nunique()))
    bad = df["image_id"].isin({what for what, _ in problems})
    df = df[~bad]
    if df.empty:
        raise NctoolError(f"{label}: no rows left after dropping {bad.sum()} pairs with bad images; "
                          f"check --image-root")
    warnings = [] if checked else _first_image_warning(df, root)
    df = df.assign(image=_embed(df["image"], root, progress) if embed else _relative(df["image"], root))

    df = df[FRONT + [c for c in df.columns if c not in FRONT + ["name", "where"]]].reset_index(drop=True)
    check_frame(df, label)  # types, unique pair ids
    write_table(df, out, image_root=root)
    return {
        "format": tables[0][1],
        "datasets": sorted(datasets),
        "rows": len(df),
        "images": df["image_id"].nunique(),
        "splits": {s: {"pairs": int((df["split"] == s).sum()), "images": df.loc[df["split"] == s, "image_id"].nunique()}
                   for s in SPLITS if (df["split"] == s).any()},
        "categories": sorted(df["category"].dropna().unique()),
        "images_checked": checked,
        "missing_images": missing,
        "corrupt_images": len(problems) - missing,
        "dropped_bad_image_pairs": int(bad.sum()),
        "dropped_empty_captions": int(empty.sum()),
        "image_root": str(root),
        "embedded": embed,
        "warnings": warnings,
        "out": str(out),
    }


# --- sources -------------------------------------------------------------------------------------

def _tables(sources: list[Path], fmt: str) -> list[tuple[Path, str]]:
    """(caption table, its format) for every source; a folder source gives the tables inside it."""
    tables = []
    for source in sources:
        if not source.exists():
            raise NctoolError(f"{source}: not found; give a dataset JSON, CSV, JSONL or Parquet file, "
                              f"or a folder holding them")
        files = [source] if source.is_file() else sorted(
            p for p in source.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES[fmt])
        if not files:
            raise NctoolError(f"{source}: no caption table in this folder (looked for "
                              f"{', '.join(SUFFIXES[fmt])}); give the caption file itself")
        tables += [(f, _detect(f) if fmt == "auto" else fmt) for f in files]
    formats = sorted({f for _, f in tables})
    if len(formats) > 1:
        raise NctoolError(f"{', '.join(map(str, sources))}: tables of several formats ({', '.join(formats)}); "
                          f"ingest one format at a time, or pass --format")
    return tables


def _detect(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "rrsitr" if "filename" in _read_rows(path, nrows=0).columns else "folder"
    by_suffix = {".json": "karpathy", ".parquet": "parquet", ".jsonl": "folder"}
    if suffix not in by_suffix:
        raise NctoolError(f"{path}: unknown format '{suffix}'; give a Karpathy .json, an RRSITR or captions .csv, "
                          f"a .jsonl or a .parquet, or pass --format {'|'.join(FORMATS)}")
    return by_suffix[suffix]


def _read_karpathy(path: Path, image_root: Path | None, caption_column: str | None) -> tuple[pd.DataFrame, Path]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise NctoolError(f"{path}: not valid JSON ({exc}); give a Karpathy-style dataset JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise NctoolError(f"{path}: no 'images' list; expected a Karpathy-style JSON like dataset_rsitmd.json "
                          f"({{\"images\": [{{\"filename\", \"split\", \"sentences\"}}]}})")
    images_dir = path.parent / "images"
    root = image_root or (images_dir if images_dir.is_dir() else path.parent)
    names, captions, splits, where = [], [], [], []
    for i, entry in enumerate(data["images"]):
        if not isinstance(entry, dict) or not entry.get("filename"):
            raise NctoolError(f"{path}: images[{i}] has no 'filename'; each entry needs filename, split, sentences")
        filename, sentences = entry["filename"], entry.get("sentences") or []
        if not isinstance(filename, str):
            raise NctoolError(f"{path}: images[{i}] has filename {filename!r}, not a string; "
                              f"give the image's file name in quotes")
        if not isinstance(sentences, list):  # a string would be read one character per caption
            raise NctoolError(f"{path}: images[{i}] ({filename}) has 'sentences' of type {type(sentences).__name__}; "
                              f"give a list of {{\"raw\": caption}} objects or caption strings")
        for k, sentence in enumerate(sentences):
            caption = sentence.get("raw") if isinstance(sentence, dict) else sentence
            if not isinstance(caption, str | None):
                raise NctoolError(f"{path}: images[{i}] ({filename}) sentence {k} is {caption!r}, not text; "
                                  f"give a caption string or {{\"raw\": caption}}")
            names.append(filename)
            captions.append(caption)
            splits.append(entry.get("split"))
            where.append(f"{path}: images[{i}] ({filename}) sentence {k}")
    return _rows(names, names, captions, splits, where), root


def _read_rrsitr(path: Path, image_root: Path | None, caption_column: str | None) -> tuple[pd.DataFrame, Path]:
    table = _read_rows(path)
    caption = caption_column or "title"
    _need(table, path, ["filename", caption])
    names = [PureWindowsPath(f).name for f in table["filename"]]  # also splits C:\... paths
    # the paths were written on another machine: --image-root remaps them by file name
    files = names if image_root else table["filename"]
    split = next((SPLIT_NAMES[w] for w in re.split(r"[^a-z]+", path.stem.lower()) if w in SPLIT_NAMES), None)
    return _rows(names, files, table[caption], split, _where(path, table)), image_root or path.parent


def _read_folder(path: Path, image_root: Path | None, caption_column: str | None) -> tuple[pd.DataFrame, Path]:
    table = _read_rows(path)
    caption = caption_column or "caption"
    _need(table, path, ["file", caption])
    root = image_root or path.parent
    files = [str(f) for f in table["file"]]
    names = [PureWindowsPath(f).name if os.path.isabs(f) else Path(f).as_posix() for f in files]
    split = table["split"].tolist() if "split" in table else None
    return _rows(names, files, table[caption], split, _where(path, table)), root


def _read_parquet(path: Path, image_root: Path | None, caption_column: str | None) -> tuple[pd.DataFrame, Path]:
    df = read_table(path, required={})
    caption = caption_column or next((c for c in CAPTION_COLUMNS if c in df.columns), "caption")
    _need(df, path, ["image", caption])
    if caption != "caption":
        df = df.drop(columns="caption", errors="ignore").rename(columns={caption: "caption"})
    root = image_root or path.parent
    names, structs = [], []
    for i, image in enumerate(df["image"], 1):
        data, file = (image or {}).get("bytes"), (image or {}).get("path")
        if not data and not file:
            raise NctoolError(f"{path}: row {i}: image has neither bytes nor path; fix the source file")
        # images without a path are identified by their content
        names.append(PureWindowsPath(file).name if file else hashlib.sha1(data).hexdigest()[:16])
        structs.append(image if data else {"bytes": None, "path": file})
    df = df.assign(name=names, image=structs, where=[f"{path}: row {i}" for i in range(1, len(df) + 1)])
    return (df if "split" in df else df.assign(split=None)), root


READERS = {"karpathy": _read_karpathy, "rrsitr": _read_rrsitr, "parquet": _read_parquet, "folder": _read_folder}


def _read_rows(path: Path, nrows: int | None = None) -> pd.DataFrame:
    """A CSV (comma- or tab-separated, with a header) or a JSONL file as a table."""
    try:
        if path.suffix.lower() == ".jsonl":
            lines = path.read_text(encoding="utf-8").splitlines()
            return pd.DataFrame([json.loads(line) for line in lines if line.strip()])
        with path.open(encoding="utf-8-sig") as fh:
            sep = "\t" if "\t" in fh.readline() else ","
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig", nrows=nrows)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError and pandas' parser errors
        raise NctoolError(f"{path}: not a readable table ({type(exc).__name__}: {exc}); "
                          f"give a CSV with a header row or a JSONL file") from None


def _need(table: pd.DataFrame, path: Path, columns: list[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        found = ", ".join(map(str, table.columns)) or "none"
        raise NctoolError(f"{path}: missing column(s) {', '.join(missing)} (columns found: {found}); "
                          f"pass --caption-column NAME if the captions are in another column, or --format")


def _rows(names, files, captions, split, where) -> pd.DataFrame:
    return pd.DataFrame({"name": names, "image": [{"bytes": None, "path": str(f)} for f in files],
                         "caption": list(captions), "split": split, "where": where})


def _where(path: Path, table: pd.DataFrame) -> list[str]:
    return [f"{path}: row {i}" for i in range(1, len(table) + 1)]


# --- common rules --------------------------------------------------------------------------------

def _with_ids(part: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Add the ids and category a source does not bring: {dataset}/{name} and #k in source order."""
    if "image_id" not in part:
        part = part.assign(image_id=dataset + "/" + part["name"])
    if "pair_id" not in part:
        part = part.assign(pair_id=part["image_id"] + "#" + part.groupby("image_id").cumcount().astype(str))
    if "category" not in part:
        part = part.assign(category=part["name"].map(category_of))
    return part


def _located(part: pd.DataFrame, root: Path, allow_outside_root: bool) -> list[dict]:
    """Image structs with absolute, normalised paths; a relative path may not climb out of root.

    Absolute paths are the source's explicit choice; a relative one that leaves the root through
    `..` is more likely a hostile or broken caption file, so it needs --allow-outside-root.
    """
    located = []
    for image, where in zip(part["image"], part["where"]):
        if image.get("bytes"):
            located.append(image)
            continue
        file = Path(os.path.abspath(Path(root, image["path"])))  # an absolute path ignores root
        if not (allow_outside_root or os.path.isabs(image["path"]) or file.is_relative_to(root)):
            raise NctoolError(f"{where}: image path '{image['path']}' leaves the image root {root}; "
                              f"give --image-root the folder holding it, or pass --allow-outside-root")
        located.append({"bytes": None, "path": str(file)})
    return located


def _relative(column: pd.Series, root: Path) -> list[dict]:
    """Paths inside root stored relative to it, so a moved image folder needs only --image-root."""
    return [{"bytes": None, "path": Path(im["path"]).relative_to(root).as_posix()}
            if not im.get("bytes") and Path(im["path"]).is_relative_to(root) else im for im in column]


def _splits(df: pd.DataFrame, fallback: str | None) -> pd.Series:
    """Normalised split of every row; rows whose source names none get the fallback (default train)."""
    raw = df["split"].fillna("").astype(str).str.strip().str.lower()
    split = raw.map(SPLIT_NAMES).where(raw != "", fallback or "train")
    if split.isna().any():
        i = split.isna().idxmax()
        raise NctoolError(f"{df.at[i, 'where']}: unknown split '{df.at[i, 'split']}'; "
                          f"use {', '.join(SPLITS)} (restval counts as train)")
    return split


def _check_ids(df: pd.DataFrame) -> None:
    """One image id must mean one image: refuse ids spread over several splits or files."""
    splits = df.groupby("image_id")["split"].nunique()
    if (splits > 1).any():
        image = splits.idxmax()
        found = ", ".join(sorted(df.loc[df["image_id"] == image, "split"].unique()))
        raise NctoolError(f"duplicate ids: image '{image}' is in splits {found}; "
                          f"an image belongs to one split: fix the source")
    paths = df["image"].map(lambda im: None if im.get("bytes") else im.get("path"))
    files = paths.groupby(df["image_id"]).nunique()
    if (files > 1).any():
        image = files.idxmax()
        found = ", ".join(sorted(paths[df["image_id"] == image].unique()))
        raise NctoolError(f"duplicate ids: image id '{image}' names several files ({found}); "
                          f"ingest them separately with different --name, or rename the files")


def _bad_images_message(problems: list[tuple[str, str]], missing: int, total: int) -> str:
    shown = "; ".join(p for _, p in problems[:3]) + ("; ..." if len(problems) > 3 else "")
    return (f"{len(problems)} of {total} images cannot be read ({missing} not found, "
            f"{len(problems) - missing} corrupt): {shown}; fix them, pass --image-root FOLDER if they live "
            f"elsewhere, or pass --skip-bad-images to drop their pairs")


def _first_image_warning(df: pd.DataFrame, root: Path) -> list[str]:
    """Without --check-images, look at one image so a wrong root shows up now, not at scoring time."""
    image = df["image"].iloc[0]
    if image.get("bytes") or Path(root, image["path"]).is_file():
        return []
    return [f"{image['path']}: {images.MISSING}; pass --image-root FOLDER (or --check-images to check them all)"]


def _embed(column: pd.Series, root: Path, progress: Progress) -> list[dict]:
    """Image structs with the file bytes inside, read once per file; path keeps the file name."""
    files = sorted({im["path"] for im in column if not im.get("bytes")})
    data = {}
    for done, file in enumerate(files, 1):
        data[file] = images.image_file({"path": file}, root).read_bytes()
        progress(done, len(files), "embedding images")
    return [im if im.get("bytes") else {"bytes": data[im["path"]], "path": os.path.basename(im["path"])}
            for im in column]
