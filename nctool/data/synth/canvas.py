"""The drawing surface of the demo scenes: an RGB canvas with anti-aliased shapes, and the palette.

Coordinates are in image units: (0, 0) is the top-left corner, (1, 1) the bottom-right, so the
drawing code works at any pixel size. Angles are radians, clockwise on screen (y points down).
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

# Colours that captions name: name -> RGB in [0, 1].
COLORS = {
    "red": (0.72, 0.2, 0.16), "white": (0.92, 0.92, 0.9), "gray": (0.55, 0.55, 0.57),
    "blue": (0.2, 0.36, 0.72), "black": (0.12, 0.12, 0.13), "yellow": (0.9, 0.78, 0.2),
    "orange": (0.88, 0.5, 0.18), "green": (0.24, 0.56, 0.3), "brown": (0.5, 0.33, 0.2),
}
# Surfaces that captions do not name by colour.
GRASS = (0.4, 0.53, 0.26)
DRY_GRASS = (0.6, 0.58, 0.36)
TREE = (0.15, 0.3, 0.13)
ASPHALT = (0.3, 0.3, 0.31)
CONCRETE = (0.64, 0.63, 0.6)
SAND = (0.86, 0.78, 0.58)
SOIL = (0.55, 0.43, 0.31)
WATER = (0.13, 0.27, 0.4)
WHITE = COLORS["white"]
BLACK = (0.0, 0.0, 0.0)


def tint(rng: np.random.Generator, color, amount: float = 0.07) -> np.ndarray:
    """A colour varied a little in brightness and hue, so objects never look cloned."""
    col = np.asarray(color) * (1 + amount * rng.standard_normal() + 0.02 * rng.standard_normal(3))
    return np.clip(col, 0, 1)


class Canvas:
    """An RGB float image in [0, 1] with anti-aliased drawing primitives in image units."""

    def __init__(self, size: int, rng: np.random.Generator):
        self.size, self.rng = size, rng
        self.px = 1 / size  # one pixel, in image units
        self.img = np.zeros((size, size, 3), np.float32)
        centres = (np.arange(size, dtype=np.float32) + 0.5) / size
        self.x, self.y = centres[None, :], centres[:, None]  # pixel centres, broadcastable

    def noise(self, cells: float) -> np.ndarray:
        """Smooth random field (zero mean, spread ~0.5) whose blobs are about 1/cells image wide."""
        n = max(int(cells), 1) + 1
        grid = self.rng.standard_normal((n, n)).astype(np.float32)
        return np.asarray(Image.fromarray(grid).resize((self.size, self.size), Image.BICUBIC))

    def paint(self, cover: np.ndarray, color, texture: float = 0.0, cells: float = 8) -> None:
        """Blend `color` (RGB, or an image of them) in where `cover` (size x size, 0..1) is set."""
        col = np.asarray(color, np.float32)
        if texture:
            col = col * (1 + texture * self.noise(cells))[..., None]
        self.img += (col - self.img) * np.asarray(cover, np.float32)[..., None]

    def fill(self, color, texture: float = 0.08, cells: float = 6) -> None:
        self.paint(np.ones((self.size, self.size)), color, texture, cells)

    def box(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        """Coverage of an axis-aligned rectangle, as a full-size mask."""
        d = np.maximum(np.maximum(x0 - self.x, self.x - x1), np.maximum(y0 - self.y, self.y - y1))
        return np.clip(0.5 - d * self.size, 0, 1)

    def band(self, angle: float, width: float, x: float = 0.5, y: float = 0.5,
             amp: float = 0.0, waves: float = 1.0, phase: float = 0.0):
        """An endless strip (road, river, runway) through (x, y) along `angle`, wavy if amp > 0.

        Returns its coverage and, per pixel, the position along the strip and the signed offset
        across it (negative on one bank, positive on the other).
        """
        dx, dy = self.x - x, self.y - y
        cos, sin = np.cos(angle), np.sin(angle)
        along, across = dx * cos + dy * sin, dy * cos - dx * sin
        off = across - amp * np.sin(2 * np.pi * waves * along + phase)
        return np.clip(0.5 - (np.abs(off) - width / 2) * self.size, 0, 1), along, off

    def shape(self, x: float, y: float, w: float, h: float, color, angle: float = 0.0,
              kind: str = "rect", alpha: float = 1.0) -> None:
        """Draw a w x h rect / ellipse / capsule centred at (x, y) with its w side along `angle`.

        kind "fan" is a quarter disc of radius w with its apex at (x, y), opening towards `angle`.
        Only the shape's bounding box is computed, so small shapes are cheap.
        """
        s = self.size
        r = (w if kind == "fan" else math.hypot(w, h) / 2) + 1.5 / s
        x0, x1 = max(int((x - r) * s), 0), min(math.ceil((x + r) * s), s)
        y0, y1 = max(int((y - r) * s), 0), min(math.ceil((y + r) * s), s)
        if x0 >= x1 or y0 >= y1:
            return
        dx, dy = self.x[:, x0:x1] - x, self.y[y0:y1] - y
        if angle:
            cos, sin = math.cos(angle), math.sin(angle)
            u, v = dx * cos + dy * sin, dy * cos - dx * sin  # along / across the shape's axis
        else:
            u, v = dx, dy
        hw, hh = w / 2, h / 2
        if kind == "rect":
            d = np.maximum(np.abs(u) - hw, np.abs(v) - hh)
        elif kind == "ellipse":  # approximate distance, good enough for a one-pixel soft edge
            d = (np.sqrt((u / hw) ** 2 + (v / hh) ** 2) - 1) * min(hw, hh)
        elif kind == "capsule":
            d = np.hypot(np.maximum(np.abs(u) - (hw - hh), 0), v) - hh
        else:  # fan: inside the disc and within 45 degrees of the axis
            d = np.maximum(np.hypot(u, v) - w, (np.abs(v) - u) * math.sqrt(0.5))
        cover = np.minimum(np.maximum(0.5 - d * s, 0), 1)  # np.clip is slow on tiny arrays
        if alpha < 1:
            cover *= alpha
        region = self.img[y0:y1, x0:x1]
        region += (np.asarray(color, np.float32) - region) * cover[..., None]

    def png(self) -> bytes:
        img = self.img + 0.012 * self.rng.standard_normal(self.img.shape, dtype=np.float32)  # sensor grain
        buf = io.BytesIO()
        Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buf, format="PNG")
        return buf.getvalue()
