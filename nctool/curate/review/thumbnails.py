"""Resized JPEGs of a dataset's images, by row number, decoded on demand and cached.

Only the `image` column of the row group holding the requested row is read (the last few row
groups stay in memory), every image is decoded through `nctool.data.images.load_image`, and the resized
JPEG is kept in an LRU cache, so paging back and forth decodes nothing twice.
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nctool.data.images import load_image

SIZES = {"thumb": 256, "large": 1024}
"""Longest side in pixels of each size the page asks for."""


class LRU(OrderedDict):
    """A dict that forgets its least recently used entry beyond `capacity` entries."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity

    def get(self, key, default=None):
        if key in self:
            self.move_to_end(key)
            return self[key]
        return default

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)


class Thumbnails:
    """JPEG bytes of the image on a row of a dataset file, at one of SIZES; safe to call from threads."""

    def __init__(self, data_path: str | os.PathLike, root: Path, *, cached_images: int = 4096,
                 cached_row_groups: int = 2):
        self.root = root
        self._file = pq.ParquetFile(data_path)
        self._starts = np.cumsum([0] + [self._file.metadata.row_group(i).num_rows
                                        for i in range(self._file.num_row_groups)])
        self._jpegs = LRU(cached_images)
        self._row_groups = LRU(cached_row_groups)
        self._lock = threading.Lock()  # the caches and the in-flight table: held for lookups and inserts only
        self._read_lock = threading.Lock()  # the Parquet file and its row-group cache (reading a cell is cheap)
        self._in_flight: dict[tuple, threading.Event] = {}

    def jpeg(self, row: int, size: str = "thumb") -> bytes:
        """The image of `row`, its longest side at most SIZES[size]; raises images.BadImage.

        Decoding, resizing and encoding run outside the lock, so different images are made in
        parallel; a second request for an image being made waits for that one instead of making it again.
        """
        key = (row, size)
        while True:
            with self._lock:
                cached = self._jpegs.get(key)
                if cached is not None:
                    return cached
                pending = self._in_flight.get(key)
                if pending is None:
                    done = self._in_flight[key] = threading.Event()
                    break
            pending.wait()  # made by another thread: then a cache hit (or, if it failed, made here)
        try:
            with self._read_lock:
                struct = self._image_struct(row)
            image = load_image(struct, self.root)
            image.thumbnail((SIZES[size], SIZES[size]))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=85)
            jpeg = buffer.getvalue()
            with self._lock:
                self._jpegs.put(key, jpeg)
            return jpeg
        finally:
            with self._lock:
                del self._in_flight[key]
            done.set()

    def _image_struct(self, row: int) -> dict:
        group = int(np.searchsorted(self._starts, row, side="right")) - 1
        column = self._row_groups.get(group)
        if column is None:
            column = self._file.read_row_group(group, columns=["image"]).column("image")
            self._row_groups.put(group, column)
        cell: pa.Scalar = column[row - int(self._starts[group])]
        return cell.as_py()
