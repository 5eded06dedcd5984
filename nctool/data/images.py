"""The pixels behind a row's `image` struct ({bytes, path}; docs/schema.md).

Every command that needs pixels goes through load_image, so a missing or unreadable file is always
one NctoolError line naming the file, never a PIL traceback.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Iterable

from PIL import Image

from nctool import schema
from nctool.errors import NctoolError
from nctool.progress import Progress, silent

MISSING = "image not found"
CORRUPT = "corrupt or not an image"


class BadImage(NctoolError):
    """An image that cannot be read; `kind` is MISSING or CORRUPT and `file` names it."""

    def __init__(self, kind: str, file: str, hint: str, reason: str = ""):
        super().__init__(f"{file}: {kind}{f' ({reason})' if reason else ''}; {hint}")
        self.kind = kind
        self.file = file


def resolve_root(parquet_path: str | os.PathLike, image_root: str | os.PathLike | None = None) -> Path:
    """Folder relative image paths resolve against: the --image-root option, else the file's own root."""
    return Path(image_root) if image_root is not None else schema.image_root(parquet_path)


def image_file(image: dict | None, root: Path) -> Path:
    """The existing file an image struct points to (its path, absolute or relative to root)."""
    path = (image or {}).get("path")
    if not path:
        raise BadImage(MISSING, "(row without image)", "the image has neither bytes nor path; "
                       "re-create the file with `nctool ingest`")
    file = Path(root, path)  # an absolute path ignores root
    if not file.is_file():
        raise BadImage(MISSING, str(file), "pass --image-root FOLDER if the images live elsewhere")
    return file


def load_image(image: dict | None, root: Path) -> Image.Image:
    """Decode an image struct to RGB: bytes win when present, else the file at path."""
    data = (image or {}).get("bytes")
    source = io.BytesIO(data) if data else image_file(image, root)
    name = str(source) if not data else image.get("path") or "(embedded image)"
    try:
        with warnings.catch_warnings():
            # PIL's warnings would reach the user's console: a file too large to decode safely is
            # a bad image like any other, and the rest (palette transparency, odd EXIF) are cosmetic
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                return im.convert("RGB")
    except Exception as exc:  # PIL raises many types for a bad file (OSError, SyntaxError, ValueError, ...)
        raise BadImage(CORRUPT, name, "replace the file, or drop it with "
                       "`nctool ingest --check-images --skip-bad-images`", type(exc).__name__) from None


def check_images(images: Iterable[tuple[str, dict]], root: Path,
                 progress: Progress = silent) -> list[tuple[str, str]]:
    """Decode every image; return (id, problem) for each id whose image is missing or corrupt.

    `images` yields (pair or image id, image struct). Ids that share an image are decoded once;
    problems read "<MISSING or CORRUPT>: <file>".
    """
    items = list(images)
    problem_of: dict = {}  # bytes or path -> problem, None when the image decodes
    problems = []
    for done, (what, image) in enumerate(items, 1):
        key = (image or {}).get("bytes") or (image or {}).get("path")
        if key not in problem_of:
            try:
                load_image(image, root)
                problem_of[key] = None
            except BadImage as exc:
                problem_of[key] = f"{exc.kind}: {exc.file}"
        if problem_of[key]:
            problems.append((what, problem_of[key]))
        progress(done, len(items), "checking images")
    return problems
