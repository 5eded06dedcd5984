"""Pieces that more than one scene draws: trees, houses, cars, planes, roads, parking lots, river banks,
and the layout helpers that find room for them."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from nctool.data.synth.canvas import ASPHALT, BLACK, COLORS, GRASS, SAND, SOIL, TREE, WATER, WHITE, Canvas, tint
from nctool.data.synth.captions import ORIENT, Fact, fact, heads, orient, pick

# Car colours, in the order the scenes draw them from.
CAR_COLORS = ("white", "red", "black", "blue")


# ----------------------------------------------------------------------------------------------
# Things

def raised(c: Canvas, x: float, y: float, w: float, h: float, color, angle: float = 0.0, kind: str = "rect",
           height: float = 0.02, shadow: float = 0.4) -> None:
    """A shape standing above the ground: its shadow, cast `height` towards the lower right (the
    light comes from the upper left), then the shape itself."""
    c.shape(x + height, y + height, w, h, BLACK, angle, kind, alpha=shadow)
    c.shape(x, y, w, h, color, angle, kind)


def tree(c: Canvas, x: float, y: float, r: float, color=TREE) -> None:
    col = tint(c.rng, color, 0.12)
    raised(c, x, y, 2 * r, 2 * r, col, kind="ellipse", height=0.35 * r, shadow=0.35)
    c.shape(x - 0.3 * r, y - 0.3 * r, r, r, np.minimum(col * 1.4, 1), kind="ellipse", alpha=0.6)


def house(c: Canvas, x: float, y: float, w: float, h: float, color, angle: float = 0.0) -> None:
    """A building from above: shadow, roof, and the sunlit half of its gable roof (ridge along w)."""
    col = tint(c.rng, color)
    raised(c, x, y, w, h, col, angle, height=0.015)
    c.shape(x + h / 4 * np.sin(angle), y - h / 4 * np.cos(angle), w, h / 2, np.minimum(col * 1.18, 1), angle)


def build_houses(c: Canvas, spots: Sequence[tuple[float, float]], w: float, h: float, roof: str) -> None:
    """A w x h house with a `roof`-coloured roof at each spot."""
    for x, y in spots:
        house(c, x, y, w, h, COLORS[roof])


def round_roof(c: Canvas, x: float, y: float, r: float, color: np.ndarray, *, inner: float, darker: float,
               glint: float, brighter: float, glint_alpha: float = 1.0) -> None:
    """A round building or tank of radius r from above: shadow, roof, a darker inner disc (`inner`
    times the radius) and a sunlit glint (`glint` times the radius) towards the upper left."""
    raised(c, x, y, 2 * r, 2 * r, color, kind="ellipse")
    c.shape(x, y, inner * r, inner * r, color * darker, kind="ellipse")
    c.shape(x - 0.2 * r, y - 0.2 * r, glint * r, glint * r, np.minimum(color * brighter, 1), kind="ellipse",
            alpha=glint_alpha)


def car(c: Canvas, x: float, y: float, angle: float, color: str) -> None:
    c.shape(x, y, 0.07, 0.036, tint(c.rng, COLORS[color], 0.05), angle)
    c.shape(x + 0.012 * np.cos(angle), y + 0.012 * np.sin(angle), 0.014, 0.03, (0.1, 0.1, 0.12), angle, alpha=0.7)


def parking_lot(c: Canvas, x: float, y: float, w: float, h: float, surface, cars: Sequence[tuple[float, float]],
                *, colors: Sequence[str] = CAR_COLORS) -> None:
    """A w x h lot of `surface` centred at (x, y), with a car of a random colour at each of `cars`."""
    c.shape(x, y, w, h, surface)
    for cx, cy in cars:
        car(c, cx, cy, np.pi / 2, pick(c.rng, colors))


def plane(c: Canvas, x: float, y: float, angle: float, length: float, color: str) -> None:
    """An airliner from above, nose towards `angle`: fuselage, wings, tailplane."""
    ax, ay = np.cos(angle), np.sin(angle)
    parts = ((0.0, length, 0.15 * length, "capsule"), (0.05 * length, 0.2 * length, 0.95 * length, "rect"),
             (-0.42 * length, 0.1 * length, 0.38 * length, "rect"))  # (offset along, along, across, kind)
    col = tint(c.rng, COLORS[color], 0.04)
    for shift, paint, alpha in ((0.02, BLACK, 0.3), (0.0, col, 1.0)):  # all shadows first: parts overlap
        for off, w, h, kind in parts:
            c.shape(x + off * ax + shift, y + off * ay + shift, w, h, paint, angle, kind, alpha)


def lined_field(c: Canvas, x: float, y: float, w: float, h: float, color, angle: float) -> None:
    """A w x h playing field of `color` inside a one-pixel white boundary line."""
    c.shape(x, y, w, h, WHITE, angle)
    c.shape(x, y, w - 2 * c.px, h - 2 * c.px, color, angle)


def road(c: Canvas, angle: float, width: float, x: float = 0.5, y: float = 0.5, color=ASPHALT,
         texture: float = 0.04, amp: float = 0.0, waves: float = 1.0) -> None:
    """An endless strip (road, path, runway) through (x, y) along `angle`, wavy if amp > 0."""
    c.paint(c.band(angle, width, x, y, amp, waves)[0], color, texture)


def patch(c: Canvas, x: float, y: float, widths: tuple[float, float], heights: tuple[float, float], color) -> None:
    """An ellipse (a lake, a clearing) of random size within `widths` x `heights` and random tilt."""
    rng = c.rng
    c.shape(x, y, rng.uniform(*widths), rng.uniform(*heights), tint(rng, color), rng.uniform(0, np.pi), "ellipse")


def canopy(c: Canvas, cover: np.ndarray, colors=(TREE,)) -> None:
    """Tree crowns packed together (a forest), in one colour or a mix of several."""
    crowns = c.noise(c.size / 3.5)
    shade = (0.75 + 0.5 * np.clip(crowns, -0.6, 0.6))[..., None]
    col = np.asarray(colors[0], np.float32) * np.ones_like(c.img)
    if len(colors) > 1:  # patches of different colours, a few crowns wide
        mix = c.noise(c.size / 8)
        edges = np.quantile(mix, np.linspace(0, 1, len(colors) + 1)[1:-1])
        col = np.asarray(colors, np.float32)[np.digitize(mix, edges)]
    c.paint(cover, col * shade * (1 + 0.15 * c.noise(3))[..., None])


def fields(c: Canvas, cover: np.ndarray) -> None:
    """Farmland patches (green, yellow, brown) with crop rows, for river banks and the like."""
    crop = c.noise(3)
    colors = np.asarray([COLORS["green"], (0.78, 0.72, 0.4), SOIL], np.float32)
    col = colors[np.digitize(crop, np.quantile(crop, [0.4, 0.75]))]
    rows = 1 + 0.08 * np.sin(2 * np.pi * c.size / 3 * c.x)
    c.paint(cover, col * rows[..., None])


# ----------------------------------------------------------------------------------------------
# Layout: where things go

def edge_frame(c: Canvas, side: str):
    """Coordinates measured from one edge of the image: depth (0 at that edge, 1 at the opposite
    one), along (parallel to it), and a function (depth, along) -> (x, y)."""
    depth = {"left": c.x, "right": 1 - c.x, "top": c.y, "bottom": 1 - c.y}[side]
    along = c.y if side in ("left", "right") else c.x

    def xy(d: float, a: float) -> tuple[float, float]:
        return {"left": (d, a), "right": (1 - d, a), "top": (a, d), "bottom": (a, 1 - d)}[side]

    return depth, along, xy


def free_spot(rng: np.random.Generator, taken: list, w: float, h: float, ok=None,
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


def free_spots(rng: np.random.Generator, taken: list, n: int, w: float, h: float, ok=None,
               within: tuple = (0, 0, 1, 1)) -> list[tuple[float, float]]:
    """Up to n free spots (see free_spot): as many as there is room for."""
    return [p for p in (free_spot(rng, taken, w, h, ok, within) for _ in range(n)) if p]


def scatter_trees(c: Canvas, n: int, taken: list, r: float = 0.035, ok=None, within: tuple = (0, 0, 1, 1),
                  color=TREE) -> list:
    """Up to n trees where there is room; returns their centres."""
    points = free_spots(c.rng, taken, n, 2 * r, 2 * r, ok, within)
    for x, y in points:
        tree(c, x, y, r * c.rng.uniform(0.85, 1.15), color)
    return points


def grove(c: Canvas, n: int, r: float = 0.035, color=TREE) -> list:
    """Up to n trees, not overlapping, clustered in one region; returns their centres."""
    x, y = spot(c.rng, 0.03)
    return scatter_trees(c, n, [], r, within=(x - 0.13, y - 0.13, x + 0.13, y + 0.13), color=color)


def ring(x: float, y: float, radius: float, n: int) -> list[tuple[float, float]]:
    """n points evenly spaced on a circle around (x, y), starting on its right."""
    return [(x + radius * np.cos(a), y + radius * np.sin(a)) for a in np.linspace(0, 2 * np.pi, n + 1)[:-1]]


def spot(rng: np.random.Generator, jitter: float = 0.05, spread: float = 1 / 3) -> tuple[float, float]:
    """A point inside a random cell of the 3 x 3 grid, so that its region name is unambiguous.

    Cell centres are `spread` apart; a smaller spread (at least 0.2) keeps big objects in the picture.
    """
    col, row = rng.integers(3, size=2)
    return (0.5 + (col - 1) * spread + rng.uniform(-jitter, jitter),
            0.5 + (row - 1) * spread + rng.uniform(-jitter, jitter))


def place(rng: np.random.Generator, half_w: float, half_h: float) -> tuple[float, float]:
    """A centre for an object of the given half sizes that keeps it in the picture and well inside
    one cell of the 3 x 3 grid, so that its region name is unambiguous (big objects end up central)."""
    def axis(half: float) -> float:
        lo, hi = half + 0.02, 1 - half - 0.02
        options = [p for p in (min(max(p, lo), hi) for p in (1 / 6, 1 / 2, 5 / 6))
                   if min(abs(p - 1 / 3), abs(p - 2 / 3)) > 0.05]
        p = pick(rng, options) if options else 0.5
        return min(max(p + rng.uniform(-0.02, 0.02), lo), hi)

    return axis(half_w), axis(half_h)


# ----------------------------------------------------------------------------------------------
# A river with its banks (the river and bridge scenes)

# Which bank a negative / positive offset from the river's axis is on, per orientation.
_BANK_NAMES = {"horizontal": ("upper", "lower"), "vertical": ("right", "left"),
               "falling": ("upper right", "lower left"), "rising": ("upper left", "lower right")}


class River(NamedTuple):
    angle: float
    adjective: str  # of its orientation: "horizontal", "diagonal", ...
    runs: tuple[str, ...]  # ways to say which way it runs
    x: float  # a point on its axis
    y: float
    width: float
    color: str
    banks: list[Fact]


def _bank(c: Canvas, kind: str, cover: np.ndarray, free: np.ndarray) -> tuple[list[str], bool]:
    """Fill one bank with trees, fields, grass or houses; returns its noun phrases and whether they are plural.

    `free` marks the pixels of this bank far enough from the water to build on.
    """
    if kind == "trees":
        canopy(c, cover)
        return ["dense green trees", "many trees"], True
    if kind == "fields":
        fields(c, cover)
        return ["farmland", "green and yellow fields"], False
    c.paint(cover, GRASS, 0.12)
    if kind == "grass":
        return ["green grass", "open grassland"], False
    ok = lambda x, y: free[int(y * c.size), int(x * c.size)]  # noqa: E731
    roof = pick(c.rng, ("red", "gray", "white", "brown"))
    houses = free_spots(c.rng, [], int(c.rng.integers(2, 6)), 0.11, 0.08, ok)
    build_houses(c, houses, 0.11, 0.08, roof)
    return heads(len(houses), "house", (f"{roof}-roofed", "") if houses else ("",)), len(houses) != 1


def river_with_banks(c: Canvas, rng: np.random.Generator, *, amp: float, kinds: Sequence[str],
          orientations: Sequence[str] = tuple(ORIENT), crossings: Sequence[float] = ()) -> River:
    """A river across the image with a kind of land on each bank, and facts about the banks.

    Parameters
    ----------
    amp
        How far the river winds from its axis (0 for a straight one).
    kinds
        The kinds of bank to choose from: "trees", "fields", "grass", "houses".
    orientations
        The orientations to choose from (names in captions.ORIENT).
    crossings
        Positions along the river, from its axis point, where roads will cross: no houses are built
        near them.
    """
    name, angle, adj, runs = orient(rng, orientations)
    x, y = 0.5 + rng.uniform(-0.08, 0.08), 0.5 + rng.uniform(-0.08, 0.08)
    width = rng.uniform(0.14, 0.22)
    cover, along, off = c.band(angle, width, x, y, amp, rng.uniform(0.6, 1.3), rng.uniform(0, 2 * np.pi))
    clear = np.all([np.abs(along - t) > 0.1 for t in crossings], axis=0) if len(crossings) else True
    bank_kinds = [pick(rng, kinds), pick(rng, kinds)]
    phrases = []
    for kind, sign in zip(bank_kinds, (-1, 1)):
        land = np.clip(0.5 + sign * off * c.size, 0, 1)
        phrases.append(_bank(c, kind, land, (sign * off > width / 2 + 0.07) & clear))
    c.paint(np.clip(0.5 - (np.abs(off) - width / 2 - 0.015) * c.size, 0, 1), SAND, 0.05)
    color = pick(rng, ("blue", "green", "brown"))
    water = {"blue": WATER, "green": (0.18, 0.36, 0.3), "brown": (0.45, 0.38, 0.26)}[color]
    c.paint(cover, water, 0.06, 4)
    if bank_kinds[0] == bank_kinds[1] and bank_kinds[0] != "houses":
        phrase, plural = phrases[0]
        banks = [fact(phrase, ["on both banks", "on both sides of the river"], plural)]
    else:
        banks = [fact(phrase, [f"on the {bank} side", f"along the {bank} bank"], plural)
                 for (phrase, plural), bank in zip(phrases, _BANK_NAMES[name])]
    return River(angle, adj, runs, x, y, width, color, banks)

