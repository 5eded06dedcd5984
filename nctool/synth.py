"""Procedural demo data: top-down remote-sensing-like scenes, each with 5 captions.

Every image is drawn from its own random generator, seeded by (seed, image index), so a dataset
is byte-identical for a given seed whatever the batching. A scene function draws one scene class
(airport, river, parking lot, ...) with random layout, counts, colours and positions onto a
`_Canvas`, and returns the *facts* that are visible in it ("three white planes" + "parked in the
lower right"). Captions are then written from those facts with varied templates and synonyms, so
two images of the same class usually get distinguishable captions and every stated detail can be
checked in the picture.

Coordinates are in image units: (0, 0) is the top-left corner, (1, 1) the bottom-right, so the
drawing code works at any pixel size. Angles are radians, clockwise on screen (y points down).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from itertools import product
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from nctool.errors import NctoolError
from nctool.schema import SPLITS

CAPTIONS_PER_IMAGE = 5

# Colours that captions name: name -> RGB in [0, 1].
_COLORS = {
    "red": (0.72, 0.2, 0.16), "white": (0.92, 0.92, 0.9), "gray": (0.55, 0.55, 0.57),
    "blue": (0.2, 0.36, 0.72), "black": (0.12, 0.12, 0.13), "yellow": (0.9, 0.78, 0.2),
    "orange": (0.88, 0.5, 0.18), "green": (0.24, 0.56, 0.3), "brown": (0.5, 0.33, 0.2),
}
# Surfaces that captions do not name by colour.
_GRASS = (0.4, 0.53, 0.26)
_DRY_GRASS = (0.6, 0.58, 0.36)
_TREE = (0.15, 0.3, 0.13)
_ASPHALT = (0.3, 0.3, 0.31)
_CONCRETE = (0.64, 0.63, 0.6)
_SAND = (0.86, 0.78, 0.58)
_SOIL = (0.55, 0.43, 0.31)
_WATER = (0.13, 0.27, 0.4)
_WHITE = _COLORS["white"]
_BLACK = (0.0, 0.0, 0.0)


class _Canvas:
    """An RGB float image in [0, 1] with anti-aliased drawing primitives in image units."""

    def __init__(self, size: int, rng: np.random.Generator):
        self.size, self.rng = size, rng
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


# ----------------------------------------------------------------------------------------------
# Words: counts, positions, orientations, and facts

_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
            "eleven", "twelve")
_TENS = ("", "ten", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

# Names of the nine regions of a 3 x 3 grid over the image, [row][column].
_REGIONS = (
    (("in the upper left", "in the top left corner"), ("at the top", "in the upper part"),
     ("in the upper right", "in the top right corner")),
    (("on the left", "on the left side"), ("in the middle", "in the center"),
     ("on the right", "on the right side")),
    (("in the lower left", "in the bottom left corner"), ("at the bottom", "in the lower part"),
     ("in the lower right", "in the bottom right corner")),
)
_SIDES = {"left": _REGIONS[1][0], "right": _REGIONS[1][2], "top": _REGIONS[0][1], "bottom": _REGIONS[2][1]}
_OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}

# Orientation name -> (angle, adjective, ways to say "running ...").
_ORIENT = {
    "horizontal": (0.0, "horizontal", ("horizontally", "from left to right")),
    "vertical": (np.pi / 2, "vertical", ("vertically", "from top to bottom")),
    "falling": (np.pi / 4, "diagonal", ("diagonally from the upper left to the lower right",
                                        "from the top left to the bottom right")),
    "rising": (-np.pi / 4, "diagonal", ("diagonally from the lower left to the upper right",
                                        "from the bottom left to the top right")),
}


def _pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


def _orient(rng: np.random.Generator, names: Sequence[str] = tuple(_ORIENT)):
    """A random orientation: (name, angle, adjective, running phrases)."""
    name = _pick(rng, names)
    return (name, *_ORIENT[name])


def _a(phrase: str) -> str:
    return "an" if phrase[0] in "aeiou" else "a"


def _plural(noun: str) -> str:
    head, _, last = noun.rpartition(" ")
    if last.endswith("y") and last[-2] not in "aeiou":
        last = last[:-1] + "ies"
    elif last.endswith(("s", "sh", "ch", "x")):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}".strip()


def _number(n: int) -> str:
    """'three', or above twelve 'about twenty-five' (rounded to five)."""
    if n < len(_NUMBERS):
        return _NUMBERS[n]
    r = 5 * round(n / 5)
    if r >= 100:
        return f"about {r}"
    return "about " + ("fifteen" if r == 15 else _TENS[r // 10] + ("-five" if r % 10 else ""))


def _heads(n: int, noun: str, adjectives: Sequence[str] = ("",)) -> list[str]:
    """Noun phrases for n things: _heads(3, "plane", ["white", ""]) -> three white planes, three planes."""
    out = []
    for adj in adjectives:
        body = f"{adj} {noun if n == 1 else _plural(noun)}".strip()
        out.append(f"{_a(body)} {body}" if n == 1 else f"{_number(n)} {body}")
        if n > 12:
            out.append(f"many {body}")
    return out


def _where(x: float, y: float) -> tuple[str, str]:
    """Ways to name the region of the 3 x 3 grid that (x, y) falls in."""
    return _REGIONS[min(max(int(y * 3), 0), 2)][min(max(int(x * 3), 0), 2)]


def _where_all(points: Sequence[tuple[float, float]]) -> list[str]:
    """Ways to name where several things are: one region, or a list of regions."""
    names = list(dict.fromkeys(_where(x, y) for x, y in points))
    if len(names) == 1:
        return list(names[0])
    return [_join([n[k] for n in names]) for k in (0, 1)]


def _centroid(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    return tuple(np.mean(points, axis=0))


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass
class _Fact:
    """One visible detail as (noun phrase, predicate) variants, e.g. ("three white planes",
    "parked in the lower right"); predicates read both after the noun and after "is"/"are"."""
    variants: list[tuple[str, str]]
    plural: bool

    def __add__(self, other: "_Fact") -> "_Fact":
        return _Fact(self.variants + other.variants, self.plural)


def _fact(heads: Sequence[str], preds: Sequence[str], plural: bool = True) -> _Fact:
    return _Fact(list(product(heads, preds)), plural)


def _count_fact(n: int, noun: str, adjectives: Sequence[str], preds: Sequence[str]) -> _Fact:
    """n things, with and without their adjectives, and where they are ('no trees ...' when n is 0)."""
    return _fact(_heads(n, noun, adjectives if n else ("",)), preds, plural=n != 1)


def _running(runs: Sequence[str], suffix: str = "") -> list[str]:
    """'running horizontally', ... Used with heads that do not name the orientation already."""
    return [f"running {r}{suffix}" for r in runs]


# Caption templates with one fact (np: noun phrase + predicate, cl: clause) or two (np2, cl2).
_ONE = ("{a_scene} with {np}", "{cl} in {this_scene}", "in {this_scene}, {cl}",
        "there {be} {np} in {a_scene}", "this is {a_scene} where {cl}", "we can see {np} in {this_scene}",
        "{np} in {a_scene}")
_TWO = ("{a_scene} with {np} and {np2}", "{cl} and {cl2} in {this_scene}", "in {this_scene}, {cl} and {cl2}",
        "{np} and {np2} can be seen in {a_scene}", "this is {a_scene} where {cl}, and {cl2}",
        "{a_scene} with {np}, where {cl2}")


def _captions(nouns: Sequence[str], facts: list[_Fact], rng: np.random.Generator) -> list[str]:
    """CAPTIONS_PER_IMAGE distinct captions, each stating one or two of the facts."""
    weights = np.array([2.0] + [1.0] * (len(facts) - 1))  # the first fact is the defining one
    out: list[str] = []
    for _ in range(500):
        k = 2 if len(facts) > 1 and rng.random() < 0.55 else 1
        # k facts drawn by weight without replacement (largest random keys u ** (1 / weight))
        chosen = np.argsort(-rng.random(len(facts)) ** (1 / weights))[:k]
        scene = _pick(rng, nouns)
        fields = {"a_scene": f"{_a(scene)} {scene}", "this_scene": f"{_pick(rng, ('this', 'the'))} {scene}"}
        for suffix, i in zip(("", "2"), chosen):
            head, pred = _pick(rng, facts[i].variants)
            be = "are" if facts[i].plural else "is"
            fields |= {f"np{suffix}": f"{head} {pred}", f"cl{suffix}": f"{head} {be} {pred}", f"be{suffix}": be}
        caption = _pick(rng, _TWO if k == 2 else _ONE).format(**fields) + "."
        if caption not in out:
            out.append(caption)
            if len(out) == CAPTIONS_PER_IMAGE:
                return out
    raise RuntimeError(f"synth: scene '{nouns[0]}' has too few facts for {CAPTIONS_PER_IMAGE} distinct captions")


# ----------------------------------------------------------------------------------------------
# Shared scene pieces

def _tint(rng: np.random.Generator, color, amount: float = 0.07) -> np.ndarray:
    """A colour varied a little in brightness and hue, so objects never look cloned."""
    col = np.asarray(color) * (1 + amount * rng.standard_normal() + 0.02 * rng.standard_normal(3))
    return np.clip(col, 0, 1)


def _tree(c: _Canvas, x: float, y: float, r: float, color=_TREE) -> None:
    col = _tint(c.rng, color, 0.12)
    c.shape(x + 0.35 * r, y + 0.35 * r, 2 * r, 2 * r, _BLACK, kind="ellipse", alpha=0.35)
    c.shape(x, y, 2 * r, 2 * r, col, kind="ellipse")
    c.shape(x - 0.3 * r, y - 0.3 * r, r, r, np.minimum(col * 1.4, 1), kind="ellipse", alpha=0.6)


def _house(c: _Canvas, x: float, y: float, w: float, h: float, color, angle: float = 0.0) -> None:
    """A building from above: shadow, roof, and the sunlit half of its gable roof (ridge along w)."""
    col = _tint(c.rng, color)
    c.shape(x + 0.015, y + 0.015, w, h, _BLACK, angle, alpha=0.4)
    c.shape(x, y, w, h, col, angle)
    c.shape(x + h / 4 * np.sin(angle), y - h / 4 * np.cos(angle), w, h / 2, np.minimum(col * 1.18, 1), angle)


def _car(c: _Canvas, x: float, y: float, angle: float, color: str) -> None:
    c.shape(x, y, 0.07, 0.036, _tint(c.rng, _COLORS[color], 0.05), angle)
    c.shape(x + 0.012 * np.cos(angle), y + 0.012 * np.sin(angle), 0.014, 0.03, (0.1, 0.1, 0.12), angle, alpha=0.7)


def _plane(c: _Canvas, x: float, y: float, angle: float, length: float, color: str) -> None:
    """An airliner from above, nose towards `angle`: fuselage, wings, tailplane."""
    ax, ay = np.cos(angle), np.sin(angle)
    parts = ((0.0, length, 0.15 * length, "capsule"), (0.05 * length, 0.2 * length, 0.95 * length, "rect"),
             (-0.42 * length, 0.1 * length, 0.38 * length, "rect"))  # (offset along, along, across, kind)
    col = _tint(c.rng, _COLORS[color], 0.04)
    for shift, paint, alpha in ((0.02, _BLACK, 0.3), (0.0, col, 1.0)):
        for off, w, h, kind in parts:
            c.shape(x + off * ax + shift, y + off * ay + shift, w, h, paint, angle, kind, alpha)


def _canopy(c: _Canvas, cover: np.ndarray, colors=(_TREE,)) -> None:
    """Tree crowns packed together (a forest), in one colour or a mix of several."""
    crowns = c.noise(c.size / 3.5)
    shade = (0.75 + 0.5 * np.clip(crowns, -0.6, 0.6))[..., None]
    col = np.asarray(colors[0], np.float32) * np.ones_like(c.img)
    if len(colors) > 1:  # patches of different colours, a few crowns wide
        patch = c.noise(c.size / 8)
        edges = np.quantile(patch, np.linspace(0, 1, len(colors) + 1)[1:-1])
        col = np.asarray(colors, np.float32)[np.digitize(patch, edges)]
    c.paint(cover, col * shade * (1 + 0.15 * c.noise(3))[..., None])


def _fields(c: _Canvas, cover: np.ndarray) -> None:
    """Farmland patches (green, yellow, brown) with crop rows, for river banks and the like."""
    patch = c.noise(3)
    colors = np.asarray([_COLORS["green"], (0.78, 0.72, 0.4), _SOIL], np.float32)
    col = colors[np.digitize(patch, np.quantile(patch, [0.4, 0.75]))]
    rows = 1 + 0.08 * np.sin(2 * np.pi * c.size / 3 * c.x)
    c.paint(cover, col * rows[..., None])


def _edge_frame(c: _Canvas, side: str):
    """Coordinates measured from one edge of the image: depth (0 at that edge, 1 at the opposite
    one), along (parallel to it), and a function (depth, along) -> (x, y)."""
    depth = {"left": c.x, "right": 1 - c.x, "top": c.y, "bottom": 1 - c.y}[side]
    along = c.y if side in ("left", "right") else c.x

    def xy(d: float, a: float) -> tuple[float, float]:
        return {"left": (d, a), "right": (1 - d, a), "top": (a, d), "bottom": (a, 1 - d)}[side]

    return depth, along, xy


def _free_spot(rng: np.random.Generator, taken: list, w: float, h: float, ok=None,
               within: tuple = (0, 0, 1, 1), tries: int = 40):
    """A random centre for a w x h box inside `within` (x0, y0, x1, y1) and the picture that
    overlaps no box in `taken` (and passes ok(x, y)); the box is added to `taken`. None when nothing fits."""
    for _ in range(tries):
        x = rng.uniform(max(within[0], w / 2 + 0.02), min(within[2], 1 - w / 2 - 0.02))
        y = rng.uniform(max(within[1], h / 2 + 0.02), min(within[3], 1 - h / 2 - 0.02))
        box = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        if (ok is None or ok(x, y)) and all(box[0] > b[2] or box[2] < b[0] or box[1] > b[3] or box[3] < b[1]
                                            for b in taken):
            taken.append(box)
            return x, y
    return None


def _scatter_trees(c: _Canvas, n: int, taken: list, r: float = 0.035, ok=None, within: tuple = (0, 0, 1, 1),
                   color=_TREE) -> list:
    """Up to n trees where there is room; returns their centres."""
    points = [p for p in (_free_spot(c.rng, taken, 2 * r, 2 * r, ok, within) for _ in range(n)) if p]
    for x, y in points:
        _tree(c, x, y, r * c.rng.uniform(0.85, 1.15), color)
    return points


def _grove(c: _Canvas, n: int, r: float = 0.035, color=_TREE) -> list:
    """Up to n trees, not overlapping, clustered in one region; returns their centres."""
    x, y = _spot(c.rng, 0.03)
    return _scatter_trees(c, n, [], r, within=(x - 0.13, y - 0.13, x + 0.13, y + 0.13), color=color)


def _spot(rng: np.random.Generator, jitter: float = 0.05, spread: float = 1 / 3) -> tuple[float, float]:
    """A point inside a random cell of the 3 x 3 grid, so that its region name is unambiguous.

    Cell centres are `spread` apart; a smaller spread (at least 0.2) keeps big objects in the picture.
    """
    col, row = rng.integers(3, size=2)
    return (0.5 + (col - 1) * spread + rng.uniform(-jitter, jitter),
            0.5 + (row - 1) * spread + rng.uniform(-jitter, jitter))


def _place(rng: np.random.Generator, half_w: float, half_h: float) -> tuple[float, float]:
    """A centre for an object of the given half sizes that keeps it in the picture and well inside
    one cell of the 3 x 3 grid, so that its region name is unambiguous (big objects end up central)."""
    def axis(half: float) -> float:
        lo, hi = half + 0.02, 1 - half - 0.02
        options = [p for p in (min(max(p, lo), hi) for p in (1 / 6, 1 / 2, 5 / 6))
                   if min(abs(p - 1 / 3), abs(p - 2 / 3)) > 0.05]
        p = _pick(rng, options) if options else 0.5
        return min(max(p + rng.uniform(-0.02, 0.02), lo), hi)

    return axis(half_w), axis(half_h)


def _at(places: Sequence[str], *verbs: str) -> list[str]:
    """Predicates for a position: 'in the upper left', 'parked in the upper left', ..."""
    return [f"{verb} {p}".strip() for verb in ("",) + verbs for p in places]


# ----------------------------------------------------------------------------------------------
# Scenes: each draws onto the canvas and returns its facts, the defining one first.

def _airport(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill(_pick(rng, (_GRASS, _DRY_GRASS)), 0.1)
    _, angle, adj, runs = _orient(rng)
    ax, ay, nx, ny = np.cos(angle), np.sin(angle), -np.sin(angle), np.cos(angle)
    off = rng.uniform(-0.1, 0.1)
    side = -1 if off > 0 else 1  # the apron goes where there is more room
    rx, ry = 0.5 + off * nx, 0.5 + off * ny
    apron, _, _ = c.band(angle, 0.2, rx + side * 0.2 * nx, ry + side * 0.2 * ny)
    c.paint(apron, (0.5, 0.5, 0.5), 0.04)
    c.paint(c.band(angle, 0.1, rx, ry)[0], _ASPHALT, 0.05)
    line, along, _ = c.band(angle, 0.012, rx, ry)
    c.paint(line * (np.sin(2 * np.pi * 7 * along) > 0), _WHITE)  # dashed centre line

    t = rng.uniform(-0.2, 0.2)
    tcol = _pick(rng, ("white", "gray", "blue"))
    tx, ty = rx + t * ax + side * 0.36 * nx, ry + t * ay + side * 0.36 * ny
    _house(c, tx, ty, 0.4, 0.09, _COLORS[tcol], angle)

    n = int(rng.integers(1, 6))
    pcol = _pick(rng, ("white", "white", "blue", "red"))
    start = rng.uniform(-0.35, 0.35 - 0.14 * (n - 1))
    planes = [(rx + (start + 0.14 * k) * ax + side * 0.19 * nx, ry + (start + 0.14 * k) * ay + side * 0.19 * ny)
              for k in range(n)]
    for x, y in planes:
        _plane(c, x, y, angle - side * np.pi / 2, 0.13, pcol)  # nose towards the runway
    where = _where(*_centroid(planes))
    return [
        _fact([f"a {adj} runway"], ["crossing the airport", "through the middle"], plural=False)
        + _fact(["a long runway", "a runway"], _running(runs), plural=False),
        _fact(_heads(n, "plane", (pcol, pcol, "")) + _heads(n, "airplane", (pcol,)),
              _at(where, "parked") + [f"parked beside the runway {p}" for p in where], plural=n > 1),
        _fact([f"a {tcol} terminal building", f"a long {tcol} building"], _at(_where(tx, ty), "standing"),
              plural=False),
    ]


def _baseball_field(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill(_GRASS, 0.1)
    n = int(rng.integers(1, 4))
    if n == 1:
        centres, r = [_spot(rng)], 0.27
    else:
        quads = np.array([(0.27, 0.27), (0.73, 0.27), (0.27, 0.73), (0.73, 0.73)])
        centres, r = [tuple(q + rng.uniform(-0.03, 0.03, 2)) for q in rng.permutation(quads)[:n]], 0.22
    taken = []
    for x, y in centres:
        # the fan opens diagonally towards the image centre, so it stays in the picture
        angle = np.arctan2(0.5 - y + 1e-3, 0.5 - x + 1e-3)
        angle = np.round((angle - np.pi / 4) / (np.pi / 2)) * np.pi / 2 + np.pi / 4
        px, py = x - 0.45 * r * np.cos(angle), y - 0.45 * r * np.sin(angle)  # home plate
        c.shape(px, py, r + 0.02, 0, _tint(rng, (0.62, 0.5, 0.36)), angle, "fan")  # warning track
        c.shape(px, py, r, 0, _tint(rng, (0.5, 0.72, 0.32)), angle, "fan")
        c.shape(px, py, 0.55 * r, 0, _tint(rng, (0.72, 0.52, 0.36)), angle, "fan")
        dx, dy = 0.21 * r * np.cos(angle), 0.21 * r * np.sin(angle)
        c.shape(px + dx, py + dy, 0.3 * r, 0.3 * r, (0.45, 0.66, 0.32), angle + np.pi / 4)
        c.shape(px, py, 0.1 * r, 0.1 * r, (0.72, 0.52, 0.36), kind="ellipse")
        taken.append((x - 0.6 * r, y - 0.6 * r, x + 0.6 * r, y + 0.6 * r))
    fields = _heads(n, "baseball field") + _heads(n, "baseball diamond")
    facts = [_fact(fields, _where_all(centres), plural=n > 1)]
    around = "around the fields" if n > 1 else "around the field"
    setting = _pick(rng, ("trees", "houses", "parking"))
    if setting == "trees":
        _scatter_trees(c, 25, taken)
        facts.append(_fact(["many green trees", "lots of trees"], [around, "between the fields" if n > 1 else
                                                                    "next to the field"]))
    elif setting == "houses":
        houses = [p for p in (_free_spot(rng, taken, 0.12, 0.08) for _ in range(int(rng.integers(2, 6)))) if p]
        roof = _pick(rng, ("red", "gray", "white", "brown"))
        for x, y in houses:
            _house(c, x, y, 0.1, 0.07, _COLORS[roof])
        near = ["near the fields" if n > 1 else "near the field"]
        facts.append(_count_fact(len(houses), "house", (f"{roof}-roofed", ""),
                                 (_at(_where_all(houses)) if houses else []) + near))
    else:
        spot = _free_spot(rng, taken, 0.3, 0.2)
        if spot:
            x, y = spot
            c.shape(x, y, 0.3, 0.2, _tint(rng, _ASPHALT))
            cars = int(rng.integers(2, 8))
            for k in range(cars):
                _car(c, x - 0.12 + 0.04 * k, y - 0.04 + 0.08 * (k % 2), np.pi / 2,
                     _pick(rng, ("white", "red", "blue", "black")))
            facts.append(_fact([f"a small parking lot with {_number(cars)} cars", "a parking lot"],
                               _at(_where(x, y)), plural=False))
    return facts


def _beach(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    side = _pick(rng, ("left", "right", "top", "bottom"))  # where the sea is
    depth, along, xy = _edge_frame(c, side)
    shore = rng.uniform(0.3, 0.42) + 0.03 * np.sin(2 * np.pi * rng.uniform(0.7, 1.5) * along + rng.uniform(0, 6.3))
    sand_w = rng.uniform(0.18, 0.26)
    sand_name, sand = _pick(rng, (("yellow", (0.88, 0.78, 0.5)), ("white", (0.93, 0.9, 0.82))))
    c.fill(sand, 0.05)
    land = _pick(rng, ("trees", "buildings", "grass"))
    inland = np.clip((depth - shore - sand_w) * c.size + 0.5, 0, 1)
    if land == "trees":
        _canopy(c, inland)
    else:
        c.paint(inland, _GRASS, 0.1)
    # sea: turquoise in the shallows, deep blue further out, white surf at the shore
    shallow = np.clip((depth - shore + 0.15) / 0.15, 0, 1)[..., None]
    water = np.asarray((0.08, 0.22, 0.42)) * (1 - shallow) + np.asarray((0.2, 0.55, 0.62)) * shallow
    c.paint(np.clip((shore - depth) * c.size + 0.5, 0, 1), water, 0.04)
    c.paint(np.clip(0.5 - np.abs(depth - shore + 0.01) * c.size, 0, 1) * 0.7, _WHITE)

    facts = [_fact(["blue sea water", "a calm blue sea", "calm blue water"], list(_SIDES[side]), plural=False),
             _fact([f"a strip of {sand_name} sand", f"{sand_name} sand"], ["along the water", "along the shore",
                   "between the sea and the land"], plural=False)]
    shore_at = shore.ravel()  # shore depth at each pixel along the shore
    if land == "buildings":  # a row of hotels just behind the sand
        roof = _pick(rng, ("red", "white", "gray"))
        k = int(rng.integers(2, 6))
        for a in np.linspace(0.12, 0.88, k):
            x, y = xy(shore_at[int(a * c.size)] + sand_w + 0.09, a)
            _house(c, x, y, 0.12, 0.09, _COLORS[roof])
        facts.append(_fact(_heads(k, "building", (f"{roof}-roofed", "")), list(_SIDES[_OPPOSITE[side]])
                           + ["behind the beach", "in a row behind the sand"]))
    else:
        facts.append(_fact(["green trees", "dense trees"] if land == "trees" else ["green grass", "a green lawn"],
                           list(_SIDES[_OPPOSITE[side]]) + ["behind the beach"], plural=land == "trees"))
    n = int(rng.integers(0, 7))
    umbrellas = []
    for a in rng.uniform(0.08, 0.92, n):
        umbrellas.append(xy(shore_at[int(a * c.size)] + rng.uniform(0.3, 0.7) * sand_w, a))
    for x, y in umbrellas:
        c.shape(x + 0.01, y + 0.01, 0.05, 0.05, _BLACK, kind="ellipse", alpha=0.3)
        c.shape(x, y, 0.05, 0.05, _COLORS[_pick(rng, ("red", "blue", "yellow", "orange"))], kind="ellipse")
    facts.append(_count_fact(n, "umbrella", ("colorful", "beach"), ["on the sand", "on the beach"]))
    return facts


def _banks(c: _Canvas, kind: str, cover: np.ndarray, free: np.ndarray) -> tuple[list[str], bool]:
    """Fill one bank of a river with trees, fields, grass or houses; returns its noun phrases.

    `free` marks the pixels of this bank far enough from the water to build on.
    """
    if kind == "trees":
        _canopy(c, cover)
        return ["dense green trees", "many trees"], True
    if kind == "fields":
        _fields(c, cover)
        return ["farmland", "green and yellow fields"], False
    c.paint(cover, _GRASS, 0.12)
    if kind == "grass":
        return ["green grass", "open grassland"], False
    ok = lambda x, y: free[int(y * c.size), int(x * c.size)]  # noqa: E731
    roof = _pick(c.rng, ("red", "gray", "white", "brown"))
    taken: list = []
    houses = [p for p in (_free_spot(c.rng, taken, 0.11, 0.08, ok) for _ in range(int(c.rng.integers(2, 6)))) if p]
    for x, y in houses:
        _house(c, x, y, 0.11, 0.08, _COLORS[roof])
    return _heads(len(houses), "house", (f"{roof}-roofed", "") if houses else ("",)), len(houses) != 1


# Which bank a negative / positive offset from the river's axis is on, per orientation.
_BANK_NAMES = {"horizontal": ("upper", "lower"), "vertical": ("right", "left"),
               "falling": ("upper right", "lower left"), "rising": ("upper left", "lower right")}


def _water_scene(c: _Canvas, rng: np.random.Generator, orientations: Sequence[str], amp: float,
                 kinds: Sequence[str], crossings: Sequence[float] = ()) -> tuple:
    """A river across the image with a kind of land on each bank (shared by river and bridge).

    No houses are built near `crossings` (positions along the river, from its axis point, where
    roads will cross). Returns (orientation name, angle, adjective, running phrases, river axis
    point, width, water colour name, bank facts).
    """
    name, angle, adj, runs = _orient(rng, orientations)
    x, y = 0.5 + rng.uniform(-0.08, 0.08), 0.5 + rng.uniform(-0.08, 0.08)
    width = rng.uniform(0.14, 0.22)
    cover, along, off = c.band(angle, width, x, y, amp, rng.uniform(0.6, 1.3), rng.uniform(0, 2 * np.pi))
    clear = np.all([np.abs(along - t) > 0.1 for t in crossings], axis=0) if len(crossings) else True
    bank_kinds = [_pick(rng, kinds), _pick(rng, kinds)]
    phrases = []
    for kind, sign in zip(bank_kinds, (-1, 1)):
        land = np.clip(0.5 + sign * off * c.size, 0, 1)
        phrases.append(_banks(c, kind, land, (sign * off > width / 2 + 0.07) & clear))
    c.paint(np.clip(0.5 - (np.abs(off) - width / 2 - 0.015) * c.size, 0, 1), _SAND, 0.05)
    color = _pick(rng, ("blue", "green", "brown"))
    water = {"blue": _WATER, "green": (0.18, 0.36, 0.3), "brown": (0.45, 0.38, 0.26)}[color]
    c.paint(cover, water, 0.06, 4)
    if bank_kinds[0] == bank_kinds[1] and bank_kinds[0] != "houses":
        heads, plural = phrases[0]
        facts = [_fact(heads, ["on both banks", "on both sides of the river"], plural)]
    else:
        facts = [_fact(heads, [f"on the {bank} side", f"along the {bank} bank"], plural)
                 for (heads, plural), bank in zip(phrases, _BANK_NAMES[name])]
    return name, angle, adj, runs, (x, y), width, color, facts


def _river(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    _, _, _, runs, _, width, color, banks = _water_scene(
        c, rng, tuple(_ORIENT), rng.uniform(0.03, 0.08), ("trees", "fields", "grass", "houses"))
    size = "wide" if width > 0.18 else "narrow"
    river = _fact([f"a {color} river", f"a winding {color} river", f"a {size} {color} river"],
                  _running(runs) + [f"flowing {r}" for r in runs], plural=False)
    return [river, *banks]


def _bridge(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    n = int(rng.integers(1, 3))
    slots = rng.permutation([-0.3, 0.0, 0.3])[:n]  # where along the river the bridges cross
    _, angle, adj, _, (rx, ry), width, color, banks = _water_scene(
        c, rng, ("horizontal", "vertical"), 0.0, ("trees", "grass", "houses"), slots)
    across = angle + np.pi / 2
    bridges, cars = [], 0
    for t in slots:
        bx, by = rx + t * np.cos(angle), ry + t * np.sin(angle)
        c.shape(bx, by, 3, 0.06, _tint(rng, _ASPHALT), across)  # the road, beyond the image
        c.shape(bx, by, width + 0.12, 0.075, _tint(rng, _CONCRETE, 0.04), across)  # the deck
        for s in rng.permutation([-0.25, 0.0, 0.25])[:int(rng.integers(0, 3))] * width:  # distinct places
            lane = _pick(rng, (-0.015, 0.015))
            _car(c, bx + s * np.cos(across) - lane * np.sin(across), by + s * np.sin(across) + lane * np.cos(across),
                 across, _pick(rng, ("white", "red", "black", "blue")))
            cars += 1
        bridges.append((bx, by))
    on = "on the bridges" if n > 1 else "on the bridge"
    facts = [_fact(_heads(n, "bridge"), [f"crossing the {adj} river", f"over a {color} river"]
                   + _at(_where_all(bridges), "crossing the river"), plural=n > 1),
             _count_fact(cars, "car", ("",), [on, "driving " + on])]
    return facts + banks


def _center(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill(_CONCRETE, 0.05)
    x, y = _spot(rng, 0.02, 0.2)
    r = rng.uniform(0.12, 0.16)
    lawn = r + rng.uniform(0.05, 0.08)
    # roads leave the building to the right / bottom / left / top, where there is room to see them
    room = [1 - x, 1 - y, x, y]
    ways = [k for k in rng.permutation(4) if room[k] > lawn + 0.12][:int(rng.integers(2, 5))]
    k = len(ways)
    for angle in np.asarray(ways) * np.pi / 2 + rng.uniform(-0.2, 0.2):
        c.shape(x + np.cos(angle), y + np.sin(angle), 2, 0.06, _tint(rng, _ASPHALT), angle)
    c.shape(x, y, 2 * lawn, 2 * lawn, _tint(rng, _GRASS), kind="ellipse")
    ring = [(x + (lawn - 0.03) * np.cos(a), y + (lawn - 0.03) * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 13)[:-1]]
    for tx, ty in ring:
        _tree(c, tx, ty, 0.025)
    roof = _pick(rng, ("white", "gray", "blue", "green", "red"))
    col = _tint(rng, _COLORS[roof])
    c.shape(x + 0.02, y + 0.02, 2 * r, 2 * r, _BLACK, kind="ellipse", alpha=0.4)
    c.shape(x, y, 2 * r, 2 * r, col, kind="ellipse")
    c.shape(x, y, 1.3 * r, 1.3 * r, col * 0.8, kind="ellipse")
    c.shape(x - 0.2 * r, y - 0.2 * r, 0.7 * r, 0.7 * r, np.minimum(col * 1.25, 1), kind="ellipse")
    where = _where(x, y)
    return [
        _fact([f"a round {roof} building", f"a large circular {roof} building",
               f"a circular building with a {roof} roof"], _at(where, "standing"), plural=False),
        _fact(_heads(k, "road", ("straight", "")), ["leading to the round building", "radiating from the building"]),
        _fact(["a ring of trees", "a ring of green trees"], ["around the building", "surrounding the building"],
              plural=False),
    ]


def _church(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill(_pick(rng, (_GRASS, _CONCRETE)), 0.08)
    _, angle, adj, _ = _orient(rng, ("horizontal", "vertical"))
    x, y = _spot(rng, 0.02, 0.22)
    roof = _pick(rng, ("red", "gray", "brown", "green"))
    col = _tint(rng, _COLORS[roof])
    ax, ay = np.cos(angle), np.sin(angle)
    _house(c, x, y, 0.34, 0.11, col, angle)  # nave
    _house(c, x + 0.07 * ax, y + 0.07 * ay, 0.25, 0.09, col, angle + np.pi / 2)  # transept
    c.shape(x - 0.17 * ax, y - 0.17 * ay, 0.08, 0.08, col * 0.75, angle)  # tower
    taken = [(x - 0.22, y - 0.22, x + 0.22, y + 0.22)]
    facts = [_fact([f"a cross-shaped church with a {roof} roof", f"a {roof}-roofed church",
                    f"a {adj} cross-shaped church"], _at(_where(x, y), "standing"), plural=False)]
    if rng.random() < 0.5:
        houses = [p for p in (_free_spot(rng, taken, 0.11, 0.08) for _ in range(int(rng.integers(2, 7)))) if p]
        hroof = _pick(rng, ("red", "gray", "white"))
        for hx, hy in houses:
            _house(c, hx, hy, 0.11, 0.08, _COLORS[hroof])
        facts.append(_count_fact(len(houses), "small house", (hroof + "-roofed", ""),
                                 ["around the church", "near the church"]))
    else:
        trees = _scatter_trees(c, int(rng.integers(3, 12)), taken)
        facts.append(_count_fact(len(trees), "tree", ("green", ""), ["around the church", "near the church"]))
    return facts


def _dense_residential(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill((0.45, 0.45, 0.45), 0.05)
    layout = _pick(rng, ("horizontal", "vertical", "grid"))
    if layout == "grid":
        rows, cols = [rng.uniform(0.3, 0.7)], [rng.uniform(0.3, 0.7)]
    else:  # one or two parallel roads
        lines = ([rng.uniform(0.3, 0.7)] if rng.random() < 0.5
                 else [0.33 + rng.uniform(-0.04, 0.04), 0.67 + rng.uniform(-0.04, 0.04)])
        rows, cols = (lines, []) if layout == "horizontal" else ([], lines)
    roof = _pick(rng, ("red", "gray", "brown", "white", "blue"))
    others = [k for k in ("red", "gray", "brown", "white", "blue") if k != roof]
    pitch = 0.1
    for hy in np.arange(0.06, 1, pitch):
        for hx in np.arange(0.06, 1, pitch):
            if any(abs(hy - r) < 0.08 for r in rows) or any(abs(hx - q) < 0.08 for q in cols):
                continue
            color = roof if rng.random() < 0.85 else _pick(rng, others)
            _house(c, hx + rng.uniform(-0.01, 0.01), hy + rng.uniform(-0.01, 0.01), 0.08, 0.07, _COLORS[color])
    for r in rows:
        c.paint(c.band(0, 0.07, 0.5, r)[0], _ASPHALT, 0.04)
    for q in cols:
        c.paint(c.band(np.pi / 2, 0.07, q, 0.5)[0], _ASPHALT, 0.04)
    if layout == "grid":
        roads = _fact(["two roads", "a horizontal and a vertical road"],
                      [f"crossing {p}" for p in _where(cols[0], rows[0])] + ["dividing the houses into four blocks"])
    else:
        n = len(rows or cols)
        roads = (_fact(_heads(n, "road", (layout,)), ["crossing the area", "running between the houses"], n > 1)
                 + _fact(_heads(n, "straight road"), _running(_ORIENT[layout][2]), n > 1))
    return [_fact([f"many {roof}-roofed houses", f"lots of houses with {roof} roofs", f"countless {roof} roofs"],
                  ["packed closely together", "arranged in tight rows", "crowded together"]), roads]


def _sparse_residential(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill(_GRASS, 0.12)
    _, angle, adj, runs = _orient(rng)
    ax, ay, nx, ny = np.cos(angle), np.sin(angle), -np.sin(angle), np.cos(angle)
    c.paint(c.band(angle, 0.06)[0], _ASPHALT, 0.04)
    n = int(rng.integers(2, 7))
    roof = _pick(rng, ("red", "gray", "white", "brown", "blue"))
    taken, houses = [], []
    lots = [(t, side) for t in np.linspace(-0.36, 0.36, 5) for side in (-1, 1)]  # along the road, either side
    for t, side in (lots[i] for i in rng.permutation(len(lots))[:n]):
        hx, hy = 0.5 + t * ax + side * 0.14 * nx, 0.5 + t * ay + side * 0.14 * ny
        c.shape(0.5 + t * ax + side * 0.06 * nx, 0.5 + t * ay + side * 0.06 * ny, 0.03, 0.06, _CONCRETE,
                angle + np.pi / 2)  # driveway
        _house(c, hx, hy, 0.13, 0.09, _COLORS[roof], angle)
        houses.append((hx, hy))
        taken.append((hx - 0.09, hy - 0.09, hx + 0.09, hy + 0.09))
    road_ok = lambda x, y: abs((y - 0.5) * np.cos(angle) - (x - 0.5) * np.sin(angle)) > 0.07  # noqa: E731
    trees = _scatter_trees(c, int(rng.integers(2, 12)), taken, ok=road_ok)
    return [
        _fact(_heads(n, "house", (f"{roof}-roofed", "")) + _heads(n, "house", (f"detached {roof}-roofed",)),
              ["along the road", f"beside a {adj} road", "scattered along the road"]),
        _fact([f"a {adj} road"], ["through the neighborhood", "between the houses"], plural=False)
        + _fact(["a narrow road", "a road"], _running(runs), plural=False),
        _count_fact(len(trees), "tree", ("green", ""), ["around the houses", "on the lawns", "scattered on the grass"]),
    ]


def _desert(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    name, sand = _pick(rng, (("yellow", (0.86, 0.72, 0.44)), ("orange", (0.8, 0.5, 0.3)),
                             ("pale", (0.88, 0.84, 0.72))))
    c.fill(sand, 0.06, 3)
    _, angle, adj, runs = _orient(rng)
    # dune ridges run along `angle`: brightness varies across it, bent by a little noise
    across = (c.y - 0.5) * np.cos(angle) - (c.x - 0.5) * np.sin(angle) + 0.04 * c.noise(3)
    c.img *= (1 + 0.13 * np.sin(2 * np.pi * rng.uniform(5, 8) * across))[..., None]
    facts = [_fact([f"{adj} ridges of {name} sand", f"{adj} {name} sand dunes"], ["covering the ground"])
             + _fact([f"{name} sand dunes", f"ridges of {name} sand"], _running(runs))]
    extra = _pick(rng, ("road", "shrubs", "none"))
    if extra == "road":
        _, rangle, radj, rruns = _orient(rng)
        c.paint(c.band(rangle, 0.045, *_spot(rng))[0], _ASPHALT, 0.04)
        facts.append(_fact([f"a straight {radj} road"], ["crossing the desert"], plural=False)
                     + _fact(["a dark road"], [f"crossing the desert {r}" for r in rruns], plural=False))
    elif extra == "shrubs":
        shrubs = _grove(c, int(rng.integers(2, 8)), 0.022, (0.3, 0.36, 0.18))
        facts.append(_count_fact(len(shrubs), "small shrub", ("dark green", ""),
                                 _at(_where(*_centroid(shrubs)), "growing")))
    return facts


def _farmland(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill(_SOIL, 0.05)  # the paths between the fields
    nr, nc = int(rng.integers(2, 4)), int(rng.integers(2, 4))
    ys = np.linspace(0, 1, nr + 1) + np.r_[0, rng.uniform(-0.05, 0.05, nr - 1), 0]
    xs = np.linspace(0, 1, nc + 1) + np.r_[0, rng.uniform(-0.05, 0.05, nc - 1), 0]
    crops = {"green": (0.3, 0.52, 0.22), "yellow": (0.82, 0.74, 0.38), "brown": (0.58, 0.44, 0.3)}
    main = _pick(rng, tuple(crops))
    odd = _pick(rng, [k for k in crops if k != main])
    odd_cells = set(rng.permutation(nr * nc)[:int(rng.integers(1, 3))].tolist())
    odd_centres = []
    for i in range(nr * nc):
        r, k = divmod(i, nc)
        name = odd if i in odd_cells else main
        if i in odd_cells:
            odd_centres.append(((xs[k] + xs[k + 1]) / 2, (ys[r] + ys[r + 1]) / 2))
        rows = 1 + 0.1 * np.sin(2 * np.pi * c.size / 3 * (c.x if rng.random() < 0.5 else c.y))  # crop rows
        c.paint(c.box(xs[k] + 0.012, ys[r] + 0.012, xs[k + 1] - 0.012, ys[r + 1] - 0.012),
                _tint(rng, crops[name], 0.05) * rows[..., None], 0.06, 4)
    n_odd = len(odd_centres)
    return [
        _fact([f"{_number(nr * nc)} rectangular fields", f"{_number(nr * nc)} fields"],
              [f"arranged in {_number(nr)} rows", "divided by narrow paths",
               f"in a {_number(nr)} by {_number(nc)} grid"]),
        _fact([f"mostly {main} fields", f"{main} crops"], ["covering most of the land", "filling most of the plots"]),
        _fact(_heads(n_odd, "field", (odd,)) + _heads(n_odd, f"{odd} plot", ("single",) if n_odd == 1 else ("",)),
              _where_all(odd_centres) + [f"{p} among the {main} ones" for p in _where_all(odd_centres)],
              plural=n_odd > 1),
    ]


def _forest(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    kind = _pick(rng, ("dark green", "green", "autumn"))
    palette = {"dark green": [(0.1, 0.22, 0.1)], "green": [(0.2, 0.4, 0.15)],
               "autumn": [(0.2, 0.38, 0.14), (0.75, 0.45, 0.15), (0.8, 0.68, 0.2), (0.6, 0.25, 0.12)]}[kind]
    _canopy(c, np.ones((c.size, c.size)), palette)
    trees = (["colorful autumn trees", "orange, yellow and green trees"] if kind == "autumn"
             else [f"dense {kind} trees", f"many {kind} trees"])
    facts = [_fact(trees, ["covering the whole area", "growing closely together"])]
    feature = _pick(rng, ("road", "clearing", "lake"))
    if feature == "road":
        _, angle, adj, runs = _orient(rng)
        c.paint(c.band(angle, 0.05, *_spot(rng), amp=0.03, waves=0.8)[0], (0.62, 0.52, 0.4), 0.05)
        facts.append(_fact([f"a {adj} dirt road"], ["through the forest", "cutting through the trees"], plural=False)
                     + _fact(["a narrow road"], _running(runs, " through the forest"), plural=False))
    elif feature == "clearing":
        x, y = _spot(rng, 0.03)
        c.shape(x, y, rng.uniform(0.22, 0.3), rng.uniform(0.18, 0.24), _tint(rng, _GRASS), rng.uniform(0, np.pi),
                "ellipse")
        facts.append(_fact(["a small clearing", "an open patch of grass"], _at(_where(x, y)), plural=False))
    else:
        x, y = _spot(rng, 0.03)
        c.shape(x, y, rng.uniform(0.18, 0.26), rng.uniform(0.14, 0.2), _tint(rng, _WATER), rng.uniform(0, np.pi),
                "ellipse")
        facts.append(_fact(["a small lake", "a dark pond"], _at(_where(x, y), "hidden among the trees"), plural=False))
    return facts


def _industrial(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill((0.56, 0.54, 0.5), 0.06)
    nc = _pick(rng, (2, 3))
    slots = [((k + 0.5) / nc, (r + 0.5) / 2) for r in range(2) for k in range(nc)]
    n = int(rng.integers(2, len(slots) + 1))
    order = rng.permutation(len(slots))
    built, empty = [slots[i] for i in order[:n]], [slots[i] for i in order[n:]]
    c.paint(c.band(0, 0.06, 0.5, 0.5)[0], _ASPHALT, 0.04)
    for k in range(1, nc):
        c.paint(c.band(np.pi / 2, 0.06, k / nc, 0.5)[0], _ASPHALT, 0.04)
    roof = _pick(rng, ("white", "gray", "blue"))
    w, h = 0.75 / nc, 0.3
    for x, y in built:
        _house(c, x, y, w, h, _COLORS[roof])
        for k in (-1, 1):  # skylight strips along the roof
            c.shape(x, y + k * h / 4, w * 0.9, 0.012, _BLACK, alpha=0.25)
    trucks = []
    for x, y in built[:int(rng.integers(0, 4))]:
        tx, ty = x + rng.uniform(-w / 3, w / 3), y + _pick(rng, (-1, 1)) * (h / 2 + 0.045)
        c.shape(tx + 0.01, ty + 0.01, 0.1, 0.04, _BLACK, alpha=0.35)
        c.shape(tx, ty, 0.1, 0.04, _tint(rng, _WHITE, 0.03))
        trucks.append((tx, ty))
    facts = [
        _fact(_heads(n, "factory building", (f"large {roof}", "large"))
              + _heads(n, "warehouse", (f"big {roof}-roofed",)),
              ["arranged in rows", "standing close together", "lined up along the roads"]),
        _count_fact(len(trucks), "truck", ("white", ""), ["parked beside the buildings", "next to the factories"]),
    ]
    if empty:
        facts.append(_fact(_heads(len(empty), "empty lot", ("",)), _where_all(empty), plural=len(empty) > 1))
    return facts


def _intersection(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    corners = _pick(rng, ("trees", "buildings"))
    c.fill(_GRASS if corners == "trees" else _CONCRETE, 0.08)
    jx, jy = 0.5 + rng.uniform(-0.1, 0.1), 0.5 + rng.uniform(-0.1, 0.1)
    w = 0.14
    # the arms that leave the junction: all four for a crossroads, three for a T-junction
    arms = [0.0, np.pi / 2, np.pi, -np.pi / 2]
    tee = rng.random() < 0.5
    if tee:
        stem = int(rng.integers(4))
        arms.pop((stem + 2) % 4)  # the arm opposite the stem is missing
    quads = [(jx + dx * 0.3, jy + dy * 0.3) for dx in (-1, 1) for dy in (-1, 1)]
    roof = _pick(rng, ("red", "gray", "white"))
    for x, y in quads:
        if corners == "trees":
            for _ in range(3):
                _tree(c, x + rng.uniform(-0.08, 0.08), y + rng.uniform(-0.08, 0.08), 0.035)
        else:
            _house(c, x, y, 0.18, 0.14, _COLORS[roof])
    for a in arms:
        ax, ay = np.cos(a), np.sin(a)
        c.shape(jx + ax, jy + ay, 2, w, _tint(rng, _ASPHALT, 0.03), a)  # the arm, out past the edge
    c.shape(jx, jy, w, w, _ASPHALT)
    for a in arms:
        ax, ay = np.cos(a), np.sin(a)
        for t in np.arange(w / 2 + 0.1, 0.9, 0.08):  # dashed centre line
            c.shape(jx + t * ax, jy + t * ay, 0.04, 0.01, _WHITE, a, alpha=0.8)
        for s in np.linspace(-w / 2 + 0.015, w / 2 - 0.015, 5):  # zebra crossing
            c.shape(jx + (w / 2 + 0.04) * ax - s * ay, jy + (w / 2 + 0.04) * ay + s * ax, 0.05, 0.012, _WHITE, a)
    n = int(rng.integers(0, 8))
    color = _pick(rng, ("white", "red", "black", "blue"))
    same = rng.random() < 0.5  # all cars one colour, or mixed
    places = [(a, t, lane) for a in arms for t in (0.17, 0.27, 0.37) for lane in (-w / 4, w / 4)]
    for i in rng.permutation(len(places))[:n]:  # distinct places, so every car can be seen
        a, t, lane = places[i]
        x, y = jx + t * np.cos(a) - lane * np.sin(a), jy + t * np.sin(a) + lane * np.cos(a)
        _car(c, x, y, a + (np.pi if lane > 0 else 0), color if same else _pick(rng, ("white", "red", "black", "blue")))
    where = _where(jx, jy)
    if tee:
        side = {0: "right", 1: "bottom", 2: "left", 3: "top"}[stem]
        junction = _fact(["a T-shaped junction", "a three-way intersection", "a T-junction"], _at(where), plural=False)
        shape = _fact(["a side road"], [f"branching off to the {side}", f"joining from the {side}"], plural=False)
    else:
        junction = _fact(["a crossroads", "a four-way intersection", "a junction of two roads"], _at(where),
                         plural=False)
        shape = _fact(["a horizontal road and a vertical road", "two straight roads"], ["crossing each other"])
    cars = _count_fact(n, "car", (color, "") if same else ("",),
                       ["on the roads", "driving on the roads", "near the intersection"])
    around = (_fact(["green trees", "clumps of trees"], ["at the corners", "beside the roads"]) if corners == "trees"
              else _fact([f"{roof}-roofed buildings", "four buildings"], ["at the corners", "on each corner"]))
    return [junction, shape, cars, around]


def _meadow(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    name, grass = _pick(rng, (("green", (0.38, 0.55, 0.24)), ("yellow-green", (0.55, 0.58, 0.3)),
                              ("dry yellow", (0.72, 0.64, 0.4))))
    c.fill(grass, 0.12, 4)
    c.img *= (1 + 0.06 * c.noise(c.size / 2))[..., None]  # blades and tufts
    facts = [_fact([f"{name} grass", f"a large area of {name} grass", f"{name} grassland"],
                   ["covering the ground", "stretching across the image"], plural=False)]
    if rng.random() < 0.5:
        _, angle, _, runs = _orient(rng)
        c.paint(c.band(angle, 0.025, *_spot(rng), amp=0.05, waves=1.0)[0], (0.66, 0.58, 0.45), 0.05)
        facts.append(_fact(["a winding dirt path", "a narrow path"], _running(runs), plural=False))
    trees = _grove(c, int(rng.integers(0, 7)))
    where = _at(_where(*_centroid(trees)), "standing") if trees else ["on the grass"]
    facts.append(_count_fact(len(trees), "tree", ("green", ""), where))
    return facts


def _mountain(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    h = c.noise(2) + 0.5 * c.noise(4) + 0.35 * np.abs(c.noise(8)) + 0.15 * c.noise(16)
    h = (h - h.min()) / (h.max() - h.min())
    gy, gx = np.gradient(h, 1 / c.size)  # slopes per image width
    shade = np.clip(1 + 0.19 * (gx + gy), 0.5, 1.5)  # lit from the upper left
    kind = _pick(rng, ("green", "brown", "gray"))
    low = np.asarray({"green": (0.25, 0.42, 0.2), "brown": (0.55, 0.42, 0.3), "gray": (0.5, 0.5, 0.5)}[kind])
    col = low * (1 - h[..., None]) + np.asarray((0.55, 0.5, 0.45)) * h[..., None]
    facts = [_fact({"green": ["green mountains", "mountains covered with green vegetation"],
                    "brown": ["bare brown mountains", "brown rocky mountains"],
                    "gray": ["gray rocky mountains", "gray mountain ridges"]}[kind],
                   ["covering the whole area", "separated by deep valleys", "stretching across the image"])]
    if rng.random() < 0.5:
        snow = np.clip((h - rng.uniform(0.6, 0.72)) * 15, 0, 1)[..., None]
        col = col * (1 - snow) + np.asarray((0.95, 0.96, 0.98)) * snow
        facts.append(_fact(["white snow", "snow"], ["on the peaks", "covering the mountain tops"], plural=False))
    else:
        facts.append(_fact(["no snow"], ["on the mountains", "on the peaks"], plural=False))
    c.img[:] = col * shade[..., None]
    if rng.random() < 0.5:  # a lake in the lowest valley away from the edges
        inner = h[c.size // 5:-c.size // 5, c.size // 5:-c.size // 5]
        iy, ix = np.unravel_index(np.argmin(inner), inner.shape)
        x, y = (ix + c.size // 5 + 0.5) / c.size, (iy + c.size // 5 + 0.5) / c.size
        c.shape(x, y, rng.uniform(0.14, 0.2), rng.uniform(0.09, 0.13), _tint(rng, _WATER), rng.uniform(0, np.pi),
                "ellipse")
        facts.append(_fact(["a small lake", "a small blue lake"], _at(_where(x, y), "lying in a valley"),
                           plural=False))
    return facts


def _parking(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill((0.4, 0.4, 0.41), 0.05)
    ori, angle, adj, _ = _orient(rng, ("horizontal", "vertical"))
    nr = int(rng.integers(2, 5))
    fill, occupancy = _pick(rng, ((0.9, "full"), (0.5, "half"), (0.2, "few")))
    rows = 0.5 + 0.22 * (np.arange(nr) - (nr - 1) / 2)
    slots = np.arange(0.1, 0.91, 0.08)
    # (row, slot) -> car colour; one car stands out in red or yellow
    taken = {(r, s): _pick(rng, ("white", "white", "black", "blue"))
             for r in range(nr) for s in range(len(slots)) if rng.random() < fill}
    odd_slot = (int(rng.integers(nr)), int(rng.integers(len(slots))))
    odd = taken[odd_slot] = _pick(rng, ("red", "yellow"))

    def xy(row: float, along: float) -> tuple[float, float]:
        return (along, row) if ori == "horizontal" else (row, along)

    for r, row in enumerate(rows):
        for along in np.append(slots, slots[-1] + 0.08) - 0.04:  # stall lines
            c.shape(*xy(row, along), 0.1, 0.006, _WHITE, angle + np.pi / 2, alpha=0.8)
        for s, along in enumerate(slots):
            if (r, s) in taken:
                _car(c, *xy(row + rng.uniform(-0.005, 0.005), along), angle + np.pi / 2 * _pick(rng, (1, -1)),
                     taken[(r, s)])
    n = len(taken)
    space = {"full": (["few empty spaces", "almost no free spaces"], ["left in the lot", "between the cars"]),
             "half": (["many empty spaces", "plenty of free spaces"], ["between the parked cars", "in the lot"]),
             "few": (["mostly empty parking spaces", "lots of empty spaces"], ["in the lot", "around the few cars"])}
    return [
        _fact(_heads(n, "car"), [f"parked in {_number(nr)} {adj} rows", f"parked in {_number(nr)} rows",
                                 "parked neatly"], plural=n != 1),
        _fact(*space[occupancy]),
        _fact([f"a {odd} car", f"a single {odd} car"],
              _at(_where(*xy(rows[odd_slot[0]], slots[odd_slot[1]])), "parked"), plural=False),
    ]


def _playground(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill(_pick(rng, (_GRASS, _CONCRETE)), 0.08)
    _, angle, _, runs = _orient(rng, ("horizontal", "vertical"))
    x, y = _spot(rng, 0.02, 0.2)
    name, track = _pick(rng, (("red", (0.7, 0.3, 0.25)), ("blue", (0.25, 0.4, 0.65)), ("green", (0.3, 0.55, 0.35))))
    c.shape(x, y, 0.5, 0.3, _tint(rng, track, 0.04), angle, "capsule")
    c.shape(x, y, 0.4, 0.2, _tint(rng, (0.3, 0.55, 0.22), 0.04), angle, "capsule")
    px = 1 / c.size
    c.shape(x, y, 0.3, 0.15, _WHITE, angle)
    c.shape(x, y, 0.3 - 2 * px, 0.15 - 2 * px, (0.32, 0.58, 0.24), angle)
    c.shape(x, y, px * 1.2, 0.15, _WHITE, angle)  # halfway line
    facts = [
        _fact([f"a {name} running track", f"an oval {name} track", f"a {name} athletic track"],
              _at(_where(x, y)) + [f"lying {r}" for r in runs], plural=False),
        _fact(["a green football field", "a soccer field"],
              ["inside the track", f"in the middle of the {name} track", f"surrounded by the {name} track"],
              plural=False),
    ]
    taken = [(x - 0.27, y - 0.27, x + 0.27, y + 0.27)]
    if rng.random() < 0.5:
        roof = _pick(rng, ("red", "gray", "white", "blue"))
        blocks = [p for p in (_free_spot(rng, taken, 0.2, 0.12) for _ in range(int(rng.integers(1, 5)))) if p]
        for bx, by in blocks:
            _house(c, bx, by, 0.2, 0.12, _COLORS[roof])
        facts.append(_count_fact(len(blocks), "building", (f"{roof}-roofed", ""),
                                 _at(_where_all(blocks)) if blocks else ["near the track"]))
    else:
        trees = _scatter_trees(c, int(rng.integers(3, 15)), taken)
        facts.append(_count_fact(len(trees), "tree", ("green", ""), ["around the playground", "around the track"]))
    return facts


def _pond(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    if rng.random() < 0.5:
        c.fill(_GRASS, 0.12)
    else:
        _fields(c, np.ones((c.size, c.size)))
    x, y = _spot(rng, 0.03)
    r = rng.uniform(0.1, 0.14)
    # an irregular outline: a main ellipse and two smaller ones overlapping its rim
    blobs = [(x, y, 2 * r * rng.uniform(1.1, 1.4), 2 * r * rng.uniform(0.8, 1.0), rng.uniform(0, np.pi))]
    for a in rng.uniform(0, 2 * np.pi, 2):
        blobs.append((x + 0.6 * r * np.cos(a), y + 0.6 * r * np.sin(a), r * 1.2, r * 0.9, a))
    name, water = _pick(rng, (("blue", (0.15, 0.32, 0.52)), ("green", (0.22, 0.4, 0.3)), ("dark", (0.08, 0.14, 0.18))))
    for bx, by, w, h, a in blobs:
        c.shape(bx, by, w + 0.03, h + 0.03, (0.3, 0.4, 0.2), a, "ellipse")  # reedy shore
    for bx, by, w, h, a in blobs:
        c.shape(bx, by, w, h, water, a, "ellipse")
    facts = [_fact([f"a {name} pond", f"a small {name} lake", f"an irregular {name} pond"],
                   _at(_where(x, y), "lying"), plural=False)]
    ring = [(x + 1.6 * r * np.cos(a), y + 1.6 * r * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 11)[:-1]]
    ring = [p for p in ring if 0.04 < p[0] < 0.96 and 0.04 < p[1] < 0.96]  # only trees in the picture
    trees = [ring[i] for i in sorted(rng.permutation(len(ring))[:int(rng.integers(0, len(ring) + 1))])]
    for tx, ty in trees:
        _tree(c, tx, ty, 0.035)
    facts.append(_count_fact(len(trees), "tree", ("green", ""), ["around the pond", "along the shore"]))
    extra = _pick(rng, ("island", "boat", "none"))
    if extra == "island":
        c.shape(x, y, 0.06, 0.05, _tint(rng, _GRASS), kind="ellipse")
        _tree(c, x, y, 0.02)
        facts.append(_fact(["a small island", "a tiny green island"], ["in the pond", "in the middle of the water"],
                           plural=False))
    elif extra == "boat":
        c.shape(x, y, 0.06, 0.025, _WHITE, rng.uniform(0, np.pi), "ellipse")
        facts.append(_fact(["a small white boat", "a little boat"], ["on the water", "in the pond"], plural=False))
    return facts


def _port(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    side = _pick(rng, ("left", "right", "top", "bottom"))  # where the sea is
    depth, _, xy = _edge_frame(c, side)
    out = {"left": np.pi, "right": 0.0, "top": -np.pi / 2, "bottom": np.pi / 2}[side]  # pointing out to sea
    quay = rng.uniform(0.45, 0.55)
    c.fill(_CONCRETE, 0.05)
    c.paint(np.clip((quay - depth) * c.size + 0.5, 0, 1), (0.1, 0.24, 0.4), 0.05, 3)
    k = int(rng.integers(1, 4))
    piers = np.sort(rng.permutation([0.2, 0.5, 0.8])[:k])
    berths = []  # (x, y, heading) where a ship can lie: both sides of each pier, and along the quay
    for a in piers:
        c.shape(*xy(quay - 0.14, a), 0.3, 0.05, _tint(rng, _CONCRETE, 0.03), out)
        berths += [(*xy(quay - 0.16, a + s * 0.065), out) for s in (-1, 1)]
    berths += [(*xy(quay - 0.04, a), out + np.pi / 2) for a in (0.35, 0.65) if np.all(np.abs(piers - a) > 0.15)]
    n = int(rng.integers(1, len(berths) + 1))
    color = _pick(rng, ("white", "red", "blue", "orange", "gray"))
    ships = [berths[i] for i in sorted(rng.permutation(len(berths))[:n])]
    for x, y, heading in ships:
        hx, hy = np.cos(heading), np.sin(heading)
        c.shape(x + 0.012, y + 0.012, 0.18, 0.05, _BLACK, heading, "ellipse", alpha=0.35)
        c.shape(x, y, 0.18, 0.05, _tint(rng, _COLORS[color], 0.05), heading, "ellipse")
        c.shape(x - 0.05 * hx, y - 0.05 * hy, 0.04, 0.032, _tint(rng, _WHITE if color != "white" else _COLORS["gray"]),
                heading)  # the bridge house at the stern
    for d in np.arange(quay + 0.1, min(quay + 0.34, 0.95), 0.06):  # rows of containers on the wharf
        for a in np.arange(0.08, 0.93, 0.07):
            if rng.random() < 0.8:
                c.shape(*xy(d, a), 0.06, 0.045, _tint(rng, _COLORS[_pick(rng, ("red", "blue", "green", "orange"))]),
                        out + np.pi / 2)
    ship_at = _where(*_centroid([s[:2] for s in ships]))
    return [
        _fact(_heads(n, "ship", (color, "")) + _heads(n, "boat", (color,)),
              _at(ship_at, "moored") + ["docked at the piers", "moored in the harbor"], plural=n > 1),
        _fact(_heads(k, "pier", ("long", "")), ["stretching into the sea", "extending into the water"], plural=k > 1),
        _fact(["blue sea water", "a harbor basin"], list(_SIDES[side]), plural=False),
        _fact(["rows of colorful containers", "many containers"], ["on the wharf"] + list(_SIDES[_OPPOSITE[side]])),
    ]


def _snowfield(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill((0.9, 0.92, 0.96), 0.03, 3)
    c.img -= (0.05 * np.clip(c.noise(4), -1, 1))[..., None] * np.asarray((1.0, 0.7, 0.3))  # blue-grey drifts
    facts = [_fact(["white snow", "thick white snow"], ["covering the ground", "covering the whole area"],
                   plural=False)]
    if rng.random() < 0.5:
        _, angle, adj, runs = _orient(rng)
        c.paint(c.band(angle, 0.04, *_spot(rng))[0], (0.45, 0.45, 0.48), 0.05)
        facts.append(_fact([f"a {adj} road"], ["crossing the snow", "through the snow"], plural=False)
                     + _fact(["a gray road"], _running(runs), plural=False))
    trees = _grove(c, int(rng.integers(1, 10)), 0.03, (0.1, 0.2, 0.14))
    facts.append(_count_fact(len(trees), "tree", ("dark", "dark green"), _at(_where(*_centroid(trees)), "standing")))
    return facts


def _stadium(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill(_pick(rng, (_CONCRETE, _GRASS)), 0.06)
    _, angle, _, runs = _orient(rng, ("horizontal", "vertical"))
    x, y = 0.5 + rng.uniform(-0.04, 0.04), 0.5 + rng.uniform(-0.04, 0.04)
    seats = _pick(rng, ("red", "blue", "white", "yellow", "orange"))
    c.shape(x + 0.025, y + 0.025, 0.8, 0.64, _BLACK, angle, "ellipse", alpha=0.35)
    c.shape(x, y, 0.8, 0.64, (0.78, 0.78, 0.8), angle, "ellipse")  # the roof
    c.shape(x, y, 0.7, 0.54, _tint(rng, _COLORS[seats], 0.04), angle, "ellipse")
    for a in np.arange(16) * np.pi / 8:  # aisles between the blocks of seats
        c.shape(x + 0.3 * np.cos(a), y + 0.23 * np.sin(a), 0.1, 0.012, (0.3, 0.3, 0.3), a, alpha=0.6)
    track = rng.random() < 0.5
    c.shape(x, y, 0.5, 0.36, (0.7, 0.3, 0.25) if track else (0.3, 0.55, 0.22), angle, "ellipse")
    c.shape(x, y, 0.34, 0.2, _WHITE, angle)
    c.shape(x, y, 0.34 - 2 / c.size, 0.2 - 2 / c.size, (0.3, 0.56, 0.22), angle)
    facts = [
        _fact([f"an oval stadium with {seats} stands", f"a large stadium with {seats} seats"],
              ["in the middle", "in the center"] + [f"lying {r}" for r in runs], plural=False),
        _fact(["a green football pitch", "a green pitch"],
              ["inside the stadium", "in the middle of the stands"]
              + (["surrounded by a red running track"] if track else []), plural=False),
    ]
    if track:
        facts.append(_fact(["a red running track", "a red track"], ["around the pitch", "inside the stands"],
                           plural=False))
    if rng.random() < 0.6:
        px, py = _pick(rng, ((0.12, 0.12), (0.88, 0.12), (0.12, 0.88), (0.88, 0.88)))
        c.shape(px, py, 0.2, 0.2, _ASPHALT)
        n = int(rng.integers(1, 7))
        for k in range(n):
            _car(c, px - 0.065 + 0.065 * (k % 3), py - 0.04 + 0.08 * (k // 3), np.pi / 2,
                 _pick(rng, ("white", "red", "black", "blue")))
        facts.append(_fact([f"a parking lot with {_number(n)} {'car' if n == 1 else 'cars'}", "a small parking lot"],
                           _at(_where(px, py)), plural=False))
    return facts


def _storage_tanks(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill(_pick(rng, (_CONCRETE, (0.7, 0.65, 0.52))), 0.06)
    nr, nc = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    n, step, r = nr * nc, 0.15, 0.06
    half_w, half_h = step * (nc - 1) / 2 + r + 0.02, step * (nr - 1) / 2 + r + 0.02
    x, y = _place(rng, half_w, half_h)
    color = _pick(rng, ("white", "green", "blue"))
    centres = [(x + step * (k - (nc - 1) / 2), y + step * (j - (nr - 1) / 2)) for j in range(nr) for k in range(nc)]
    for j in range(nr):  # a pipe along each row
        c.shape(x, y + step * (j - (nr - 1) / 2), step * (nc - 1) + 0.04, 0.012, (0.4, 0.4, 0.42))
    for tx, ty in centres:
        col = _tint(rng, _COLORS[color], 0.04)
        c.shape(tx + 0.02, ty + 0.02, 2 * r, 2 * r, _BLACK, kind="ellipse", alpha=0.4)
        c.shape(tx, ty, 2 * r, 2 * r, col, kind="ellipse")
        c.shape(tx, ty, 1.5 * r, 1.5 * r, col * 0.85, kind="ellipse")  # floating roof
        c.shape(tx - 0.2 * r, ty - 0.2 * r, 0.6 * r, 0.6 * r, np.minimum(col * 1.15, 1), kind="ellipse", alpha=0.7)
    if nr > 1 and nc > 1:
        layout = [f"arranged in {_number(nr)} rows of {_number(nc)}",
                  f"arranged in a {_number(nr)} by {_number(nc)} grid"]
    elif n > 1:
        layout = [f"lined up in a {'horizontal' if nr == 1 else 'vertical'} row", "standing in a single row"]
    else:
        layout = []
    where = _where(*_centroid(centres))
    facts = [_fact(_heads(n, "storage tank", (color, "")) + _heads(n, "oil tank", (f"round {color}",)),
                   _at(where, "standing") + [f"{lay} {p}" for lay in layout for p in where], plural=n > 1)]
    if rng.random() < 0.5:
        _, angle, adj, runs = _orient(rng, ("horizontal", "vertical"))
        # alongside the group, on the side with more room
        if adj == "horizontal":
            rx, ry = 0.5, y + (half_h + 0.04) * (-1 if y > 0.5 else 1)
        else:
            rx, ry = x + (half_w + 0.04) * (-1 if x > 0.5 else 1), 0.5
        c.paint(c.band(angle, 0.06, rx, ry)[0], _ASPHALT, 0.04)
        facts.append(_fact([f"a {adj} road"], ["next to the tanks", "beside the tanks"], plural=False)
                     + _fact(["a straight road"], _running(runs), plural=False))
    return facts


def _tennis_court(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill(_pick(rng, (_GRASS, _CONCRETE)), 0.08)
    _, angle, adj, runs = _orient(rng, ("horizontal", "vertical"))
    n = int(rng.integers(1, 5))
    long, short, gap = 0.24, 0.12, 0.02
    name, surface = _pick(rng, (("green", (0.25, 0.52, 0.3)), ("blue", (0.22, 0.38, 0.66)), ("red", (0.66, 0.3, 0.24))))
    span = n * short + (n - 1) * gap  # the courts lie side by side across their long axis
    w, h = (long, span) if adj == "horizontal" else (span, long)
    x, y = _place(rng, w / 2 + 0.03, h / 2 + 0.03)
    c.shape(x, y, w + 0.06, h + 0.06, _tint(rng, np.asarray(surface) * 0.7, 0.03))  # surround
    px = 1 / c.size
    for k in range(n):
        s = (k - (n - 1) / 2) * (short + gap)
        cx, cy = (x, y + s) if adj == "horizontal" else (x + s, y)
        c.shape(cx, cy, long, short, _WHITE, angle)
        c.shape(cx, cy, long - 2 * px, short - 2 * px, _tint(rng, surface, 0.03), angle)
        c.shape(cx, cy, 1.2 * px, short, (0.15, 0.15, 0.15), angle)  # the net
    where = _where(x, y)
    facts = [_fact(_heads(n, "tennis court", (name, name, "")),
                   _at(where) + [f"laid out {r}" for r in runs]
                   + ([f"side by side {p}" for p in where] if n > 1 else []),
                   plural=n > 1)]
    taken = [(x - w / 2 - 0.05, y - h / 2 - 0.05, x + w / 2 + 0.05, y + h / 2 + 0.05)]
    trees = _scatter_trees(c, int(rng.integers(0, 14)), taken)
    around = "around the courts" if n > 1 else "around the court"
    facts.append(_count_fact(len(trees), "tree", ("green", ""), [around, "nearby"]))
    return facts


# ----------------------------------------------------------------------------------------------
# The classes, and the dataset

_Scene = Callable[[_Canvas, np.random.Generator], list[_Fact]]
_SCENES: dict[str, tuple[_Scene, tuple[str, ...]]] = {  # class -> (drawing function, scene nouns)
    "airport": (_airport, ("airport", "airfield")),
    "baseball_field": (_baseball_field, ("baseball park", "baseball complex", "ballpark")),
    "beach": (_beach, ("beach", "seaside beach", "coastal beach")),
    "bridge": (_bridge, ("bridge area", "river crossing")),
    "center": (_center, ("city center", "town center", "civic center")),
    "church": (_church, ("church area", "churchyard")),
    "dense_residential": (_dense_residential, ("dense residential area", "crowded residential district",
                                               "densely built residential area")),
    "desert": (_desert, ("desert", "desert area", "stretch of desert")),
    "farmland": (_farmland, ("farmland", "farming area", "piece of farmland")),
    "forest": (_forest, ("forest", "forest area", "woodland")),
    "industrial": (_industrial, ("industrial area", "industrial park", "factory district")),
    "intersection": (_intersection, ("intersection", "road intersection", "junction area")),
    "meadow": (_meadow, ("meadow", "grassland", "open meadow")),
    "mountain": (_mountain, ("mountain area", "mountainous area", "mountain landscape")),
    "parking": (_parking, ("parking lot", "car park", "parking area")),
    "playground": (_playground, ("playground", "sports ground", "school playground")),
    "pond": (_pond, ("pond area", "lakeside area", "park with a pond")),
    "port": (_port, ("port", "harbor", "seaport")),
    "river": (_river, ("river valley", "riverside area", "river landscape")),
    "snowfield": (_snowfield, ("snowfield", "snowy area", "snow-covered land")),
    "sparse_residential": (_sparse_residential, ("sparse residential area", "suburban residential area",
                                                 "quiet residential neighborhood")),
    "stadium": (_stadium, ("stadium area", "sports venue", "stadium complex")),
    "storage_tanks": (_storage_tanks, ("storage tank area", "tank farm", "oil depot")),
    "tennis_court": (_tennis_court, ("tennis club", "tennis center", "sports club with tennis courts")),
}
CATEGORIES = list(_SCENES)


def render(index: int, size: int = 64, seed: int = 0) -> tuple[str, bytes, list[str]]:
    """Image `index` of the dataset for `seed`: (class, PNG bytes, captions). Classes take turns."""
    category = CATEGORIES[index % len(CATEGORIES)]
    rng = np.random.default_rng([seed, index])  # one stream per image: independent of batching
    canvas = _Canvas(size, rng)
    draw, nouns = _SCENES[category]
    facts = draw(canvas, rng)
    return category, canvas.png(), _captions(nouns, facts, rng)


def _assign_splits(categories: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> list[str]:
    """A split per image: the overall fractions exactly (to one image), spread evenly over classes.

    Images are visited class by class in random order and dealt out by smooth weighted
    round-robin: each split earns its fraction per image, and the one most in credit gets it.
    """
    out = [""] * len(categories)
    credit = np.zeros(len(SPLITS))
    for i in np.lexsort((rng.random(len(categories)), categories)):
        credit += fractions
        k = int(np.argmax(credit))
        credit[k] -= 1
        out[i] = SPLITS[k]
    return out


def check_options(n_images: int, size: int, splits: Sequence[float]) -> None:
    """Raise NctoolError (one line) unless generate() can work with these options."""
    if n_images < 10:
        raise NctoolError(f"images: {n_images} is too few; ask for at least 10 so that every split gets some")
    if not 32 <= size <= 256:
        raise NctoolError(f"size: {size} px is out of range; choose 32 to 256 (64 is the default)")
    if (len(splits) != 3 or min(splits) < 0 or splits[0] <= 0 or abs(sum(splits) - 1) > 1e-6):
        shown = ", ".join(f"{name}={f:.3g}" for name, f in zip(SPLITS, splits))
        raise NctoolError(f"splits: {shown} is not a valid split; fractions must be between 0 and 1, "
                          f"add up to 1, and leave some for train")


def generate(n_images: int, size: int = 64, seed: int = 0, splits: Sequence[float] = (0.8, 0.1, 0.1),
             progress: Callable[[int, int, str], None] | None = None) -> pd.DataFrame:
    """A demo dataset in nctool's schema: n_images synthetic scenes, 5 captions each.

    Same arguments, same bytes. `splits` are the train / val / test fractions (by image).
    """
    check_options(n_images, size, splits)
    categories = np.arange(n_images) % len(CATEGORIES)
    split_of = _assign_splits(categories, np.asarray(splits, float), np.random.default_rng(seed))
    rows = []
    for i in range(n_images):
        category, png, captions = render(i, size, seed)
        image_id = f"synth/{i:06d}"
        image = {"bytes": png, "path": None}
        rows += [{"pair_id": f"{image_id}#{k}", "image_id": image_id, "image": image, "caption": caption,
                  "split": split_of[i], "category": category} for k, caption in enumerate(captions)]
        if progress and ((i + 1) % 64 == 0 or i + 1 == n_images):
            progress(i + 1, n_images, "synth")
    return pd.DataFrame(rows)
