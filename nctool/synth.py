"""Procedural demo data: top-down remote-sensing-like scenes, each with 5 captions.

Every image is drawn from its own random generator, seeded by (seed, image index), so a dataset
is byte-identical for a given seed whatever the batching. A scene function draws one scene class
(airport, river, parking lot, ...) with random layout, counts, colours and positions onto a
`_Canvas`, and returns the *facts* that are visible in it ("three white planes" + "parked in the
lower right"). Captions are then written from those facts with varied templates and synonyms, so
two images of the same class usually get distinguishable captions and every stated detail can be
checked in the picture.

Coordinates are in image units: (0, 0) is the top-left corner, (1, 1) the bottom-right, so scenes
look the same at any size. Angles are radians, clockwise on screen (y points down).
"""

from __future__ import annotations

import io
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
        r = (w if kind == "fan" else np.hypot(w, h) / 2) + 1.5 / s
        x0, x1 = max(int((x - r) * s), 0), min(int(np.ceil((x + r) * s)), s)
        y0, y1 = max(int((y - r) * s), 0), min(int(np.ceil((y + r) * s)), s)
        if x0 >= x1 or y0 >= y1:
            return
        dx, dy = self.x[:, x0:x1] - x, self.y[y0:y1] - y
        cos, sin = np.cos(angle), np.sin(angle)
        u, v = dx * cos + dy * sin, dy * cos - dx * sin  # along / across the shape's axis
        hw, hh = w / 2, h / 2
        if kind == "rect":
            d = np.maximum(np.abs(u) - hw, np.abs(v) - hh)
        elif kind == "ellipse":  # approximate distance, good enough for a one-pixel soft edge
            d = (np.sqrt((u / hw) ** 2 + (v / hh) ** 2) - 1) * min(hw, hh)
        elif kind == "capsule":
            d = np.hypot(np.maximum(np.abs(u) - (hw - hh), 0), v) - hh
        else:  # fan: inside the disc and within 45 degrees of the axis
            d = np.maximum(np.hypot(u, v) - w, (np.abs(v) - u) / np.sqrt(2))
        cover = np.clip(0.5 - d * s, 0, 1) * alpha
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
_TENS = {1: "fifteen", 2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty"}

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
    """'three', or 'about twenty' above twelve (rounded to five)."""
    if n < len(_NUMBERS):
        return _NUMBERS[n]
    r = max(15, 5 * round(n / 5))
    return "about " + (_TENS[1] if r == 15 else _TENS[r // 10] + ("-five" if r % 10 else ""))


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
    return tuple(np.mean(points, axis=0)) if points else (0.5, 0.5)


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass
class _Fact:
    """One visible detail as (noun phrase, predicate) variants, e.g. ("three white planes",
    "parked in the lower right"); predicates read both after the noun and after "is"/"are"."""
    variants: list[tuple[str, str]]
    plural: bool


def _fact(heads: Sequence[str], preds: Sequence[str], plural: bool = True) -> _Fact:
    return _Fact(list(product(heads, preds)), plural)


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
        chosen = rng.choice(len(facts), k, replace=False, p=weights / weights.sum())
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
    col = np.asarray(color) * (1 + amount * rng.standard_normal()) + 0.02 * rng.standard_normal(3)
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


def _free_spot(rng: np.random.Generator, taken: list, w: float, h: float, ok=None, tries: int = 40):
    """A random centre for a w x h box that overlaps no box in `taken` (and passes ok(x, y));
    the box is added to `taken`. None when nothing fits."""
    for _ in range(tries):
        x, y = rng.uniform(w / 2 + 0.02, 1 - w / 2 - 0.02), rng.uniform(h / 2 + 0.02, 1 - h / 2 - 0.02)
        box = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        if (ok is None or ok(x, y)) and all(box[0] > b[2] or box[2] < b[0] or box[1] > b[3] or box[3] < b[1]
                                            for b in taken):
            taken.append(box)
            return x, y
    return None


def _scatter_trees(c: _Canvas, n: int, taken: list, r: float = 0.035, ok=None) -> list:
    points = [p for p in (_free_spot(c.rng, taken, 2 * r, 2 * r, ok) for _ in range(n)) if p]
    for x, y in points:
        _tree(c, x, y, r * c.rng.uniform(0.8, 1.2))
    return points


def _spot(rng: np.random.Generator, jitter: float = 0.05) -> tuple[float, float]:
    """A point well inside a random cell of the 3 x 3 grid (so its region name is unambiguous)."""
    col, row = rng.integers(3, size=2)
    return (col + 0.5) / 3 + rng.uniform(-jitter, jitter), (row + 0.5) / 3 + rng.uniform(-jitter, jitter)


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
    c.paint(apron, _CONCRETE, 0.04)
    c.paint(c.band(angle, 0.1, rx, ry)[0], _ASPHALT, 0.05)
    line, along, _ = c.band(angle, 0.012, rx, ry)
    c.paint(line * (np.sin(2 * np.pi * 7 * along) > 0), _WHITE)  # dashed centre line

    t = rng.uniform(-0.2, 0.2)
    tcol = _pick(rng, ("white", "gray", "blue"))
    tx, ty = rx + t * ax + side * 0.36 * nx, ry + t * ay + side * 0.36 * ny
    _house(c, tx, ty, 0.4, 0.09, _COLORS[tcol], angle)

    n = int(rng.integers(1, 6))
    pcol = _pick(rng, ("white", "white", "gray", "blue"))
    start = rng.uniform(-0.35, 0.35 - 0.14 * (n - 1))
    planes = [(rx + (start + 0.14 * k) * ax + side * 0.19 * nx, ry + (start + 0.14 * k) * ay + side * 0.19 * ny)
              for k in range(n)]
    for x, y in planes:
        _plane(c, x, y, angle - side * np.pi / 2, 0.13, pcol)  # nose towards the runway
    where = _where(*_centroid(planes))
    return [
        _fact([f"a {adj} runway", "a long runway"], [f"running {r}" for r in runs] + ["crossing the airport"],
              plural=False),
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
        # the fan opens away from the image centre (diagonally) so neighbours do not overlap
        angle = np.arctan2(y - 0.5 + 1e-3, x - 0.5 + 1e-3)
        angle = np.round((angle - np.pi / 4) / (np.pi / 2)) * np.pi / 2 + np.pi / 4
        px, py = x - 0.45 * r * np.cos(angle), y - 0.45 * r * np.sin(angle)  # home plate
        c.shape(px, py, r, 0, _tint(rng, (0.42, 0.64, 0.3)), angle, "fan")
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
        facts.append(_fact(_heads(len(houses), "house", (f"{roof}-roofed", "")) or ["no houses"],
                           _at(_where_all(houses)) + ["near the " + ("fields" if n > 1 else "field")],
                           plural=len(houses) != 1))
    else:
        spot = _free_spot(rng, taken, 0.3, 0.2)
        if spot:
            x, y = spot
            c.shape(x, y, 0.3, 0.2, _tint(rng, _ASPHALT))
            cars = int(rng.integers(2, 8))
            for k in range(cars):
                _car(c, x - 0.12 + 0.04 * k, y - 0.04 + 0.08 * (k % 2), np.pi / 2, _pick(rng, ("white", "red", "blue", "black")))
            facts.append(_fact([f"a small parking lot with {_number(cars)} cars", "a parking lot"],
                               _at(_where(x, y)), plural=False))
    return facts


def _beach(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    side = _pick(rng, ("left", "right", "top", "bottom"))
    # depth: 0 at the sea-side edge, 1 at the opposite edge; along: position parallel to the shore
    depth = {"left": c.x, "right": 1 - c.x, "top": c.y, "bottom": 1 - c.y}[side]
    along = c.y if side in ("left", "right") else c.x

    def xy(d: float, a: float) -> tuple[float, float]:
        return {"left": (d, a), "right": (1 - d, a), "top": (a, d), "bottom": (a, 1 - d)}[side]

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

    facts = [_fact(["blue sea water", "the blue sea", "calm blue water"], list(_SIDES[side]), plural=False),
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
    facts.append(_fact(_heads(n, "colorful umbrella") + _heads(n, "beach umbrella") if n else ["no umbrellas"],
                       ["on the sand", "on the beach"] if n else ["on the sand"], plural=n != 1))
    return facts


def _banks(c: _Canvas, kind: str, cover: np.ndarray, free: np.ndarray) -> tuple[list[str], bool]:
    """Fill one bank of a river with trees, fields, grass or houses; returns its noun phrases.

    `free` marks the pixels of this bank far enough from the water to build on.
    """
    if kind == "trees":
        _canopy(c, cover)
        return ["dense green trees", "a strip of forest"], True
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
    return _heads(len(houses), "house", (f"{roof}-roofed", "")) or ["no houses"], len(houses) != 1


# Which bank a negative / positive offset from the river's axis is on, per orientation.
_BANK_NAMES = {"horizontal": ("upper", "lower"), "vertical": ("right", "left"),
               "falling": ("upper right", "lower left"), "rising": ("upper left", "lower right")}


def _water_scene(c: _Canvas, rng: np.random.Generator, orientations: Sequence[str], amp: float,
                 kinds: Sequence[str]) -> tuple:
    """A river across the image with a kind of land on each bank (shared by river and bridge).

    Returns (orientation name, angle, adjective, running phrases, river axis point, width, water
    colour name, bank facts).
    """
    name, angle, adj, runs = _orient(rng, orientations)
    x, y = 0.5 + rng.uniform(-0.08, 0.08), 0.5 + rng.uniform(-0.08, 0.08)
    width = rng.uniform(0.14, 0.22)
    cover, _, off = c.band(angle, width, x, y, amp, rng.uniform(0.6, 1.3), rng.uniform(0, 2 * np.pi))
    bank_kinds = [_pick(rng, kinds), _pick(rng, kinds)]
    phrases = []
    for kind, sign in zip(bank_kinds, (-1, 1)):
        land = np.clip(0.5 + sign * off * c.size, 0, 1)
        phrases.append(_banks(c, kind, land, sign * off > width / 2 + 0.07))
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
    _, _, adj, runs, _, width, color, banks = _water_scene(
        c, rng, tuple(_ORIENT), rng.uniform(0.03, 0.08), ("trees", "fields", "grass", "houses"))
    size = "wide" if width > 0.18 else "narrow"
    river = _fact([f"a {color} river", f"a winding {color} river", f"a {size} {color} river"],
                  [f"running {r}" for r in runs] + [f"flowing {r}" for r in runs], plural=False)
    return [river, *banks]


def _bridge(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    name, angle, adj, runs, (rx, ry), width, color, banks = _water_scene(
        c, rng, ("horizontal", "vertical"), 0.0, ("trees", "grass", "houses"))
    across = angle + np.pi / 2
    n = int(rng.integers(1, 3))
    slots = rng.permutation([-0.3, 0.0, 0.3])[:n]  # where along the river the bridges cross
    bridges, cars = [], 0
    for t in slots:
        bx, by = rx + t * np.cos(angle), ry + t * np.sin(angle)
        c.shape(bx, by, 3, 0.06, _tint(rng, _ASPHALT), across)  # the road, beyond the image
        c.shape(bx, by, width + 0.12, 0.075, _tint(rng, _CONCRETE, 0.04), across)  # the deck
        for k in range(int(rng.integers(0, 3))):
            s = rng.uniform(-width / 2, width / 2)
            _car(c, bx + s * np.cos(across), by + s * np.sin(across), across,
                 _pick(rng, ("white", "red", "black", "blue")))
            cars += 1
        bridges.append((bx, by))
    on = "on the bridges" if n > 1 else "on the bridge"
    facts = [_fact(_heads(n, "bridge"), [f"crossing the {adj} river", f"over a {color} river"]
                   + (_at(_where_all(bridges), "crossing the river")), plural=n > 1),
             _fact(_heads(cars, "car") if cars else ["no cars"], [on, "driving " + on], plural=cars != 1)]
    return facts + banks


def _center(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill(_CONCRETE, 0.05)
    x, y = _spot(rng, 0.03) if rng.random() < 0.5 else (0.5 + rng.uniform(-0.05, 0.05), 0.5 + rng.uniform(-0.05, 0.05))
    r = rng.uniform(0.12, 0.16)
    k = int(rng.integers(2, 5))
    for angle in rng.permutation(4)[:k] * np.pi / 2 + rng.uniform(-0.3, 0.3):
        c.shape(x + np.cos(angle), y + np.sin(angle), 2, 0.06, _tint(rng, _ASPHALT), angle)
    lawn = r + rng.uniform(0.05, 0.08)
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
        _fact(["a ring of trees", "green lawn and trees"], ["around the building", "surrounding the building"],
              plural=False),
    ]


def _church(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill(_pick(rng, (_GRASS, _CONCRETE)), 0.08)
    ori, angle, adj, _ = _orient(rng, ("horizontal", "vertical"))
    x, y = _spot(rng, 0.03)
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
        facts.append(_fact(_heads(len(houses), "small house", (hroof + "-roofed", "")) or ["no houses"],
                           ["around the church", "near the church"], plural=len(houses) != 1))
    else:
        trees = _scatter_trees(c, int(rng.integers(3, 12)), taken)
        facts.append(_fact(_heads(len(trees), "tree", ("green", "")) or ["no trees"],
                           ["around the church", "near the church"], plural=len(trees) != 1))
    return facts


def _dense_residential(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill((0.45, 0.45, 0.45), 0.05)
    layout = _pick(rng, ("horizontal", "vertical", "grid"))
    rows = [rng.uniform(0.3, 0.7)] if layout != "vertical" else []
    cols = [rng.uniform(0.3, 0.7)] if layout != "horizontal" else []
    if layout != "grid" and rng.random() < 0.5:  # two parallel roads
        (rows or cols)[:] = [0.33 + rng.uniform(-0.04, 0.04), 0.67 + rng.uniform(-0.04, 0.04)]
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
                      _at(_where(cols[0], rows[0]), "crossing") + ["dividing the houses into four blocks"])
    else:
        roads = _fact(_heads(len(rows or cols), "road", (layout, "straight " + layout)),
                      ["crossing the area", "running between the houses", f"running {_ORIENT[layout][2][0]}"],
                      plural=len(rows or cols) > 1)
    return [_fact([f"many {roof}-roofed houses", f"lots of houses with {roof} roofs", f"densely packed {roof} roofs"],
                  ["packed closely together", "arranged in tight rows", "crowded together"]), roads]


def _sparse_residential(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    c.fill(_GRASS, 0.12)
    name, angle, adj, runs = _orient(rng)
    ax, ay, nx, ny = np.cos(angle), np.sin(angle), -np.sin(angle), np.cos(angle)
    c.paint(c.band(angle, 0.06)[0], _ASPHALT, 0.04)
    n = int(rng.integers(2, 7))
    roof = _pick(rng, ("red", "gray", "white", "brown", "blue"))
    taken = [(0.5 - 0.08, 0.5 - 0.08, 0.5 + 0.08, 0.5 + 0.08)]
    houses = []
    for t in rng.permutation(np.linspace(-0.36, 0.36, 7))[:n]:
        side = _pick(rng, (-1, 1))
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
        _fact([f"a {adj} road", "a narrow road"], [f"running {r}" for r in runs], plural=False),
        _fact(_heads(len(trees), "tree", ("green", "")) or ["no trees"],
              ["around the houses", "on the lawns", "scattered on the grass"], plural=len(trees) != 1),
    ]


def _desert(c: _Canvas, rng: np.random.Generator) -> list[_Fact]:
    name, sand = _pick(rng, (("yellow", (0.86, 0.72, 0.44)), ("orange", (0.8, 0.5, 0.3)),
                             ("pale", (0.88, 0.84, 0.72))))
    c.fill(sand, 0.06, 3)
    ori, angle, adj, runs = _orient(rng)
    # dune ridges run along `angle`: brightness varies across it, bent by a little noise
    across = (c.y - 0.5) * np.cos(angle) - (c.x - 0.5) * np.sin(angle) + 0.04 * c.noise(3)
    c.img *= (1 + 0.13 * np.sin(2 * np.pi * rng.uniform(5, 8) * across))[..., None]
    facts = [_fact([f"{name} sand dunes", f"rippled {name} sand", f"{adj} ridges of {name} sand"],
                   [f"running {r}" for r in runs] + ["covering the ground"], plural=name != "pale")]
    facts[0].plural = True  # "dunes" / "ridges" / "sand": the first two are plural, keep one verb form
    facts[0].variants = [(h, p) for h, p in facts[0].variants if not h.startswith("rippled")]
    extra = _pick(rng, ("road", "shrubs", "none"))
    if extra == "road":
        _, rangle, radj, rruns = _orient(rng)
        c.paint(c.band(rangle, 0.045, *_spot(rng))[0], _ASPHALT, 0.04)
        facts.append(_fact([f"a straight {radj} road", "a dark road"], [f"crossing the desert {r}" for r in rruns],
                           plural=False))
    elif extra == "shrubs":
        x0, y0 = _spot(rng)
        n = int(rng.integers(2, 8))
        pts = [(x0 + rng.uniform(-0.12, 0.12), y0 + rng.uniform(-0.12, 0.12)) for _ in range(n)]
        for x, y in pts:
            _tree(c, x, y, 0.022, (0.3, 0.36, 0.18))
        facts.append(_fact(_heads(n, "small shrub", ("dark green", "")), _at(_where(x0, y0), "growing")))
    return facts
