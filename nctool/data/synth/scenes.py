"""The scene classes: each function draws one class onto the canvas and returns its facts, the
defining one first. `@scene` registers it under its class name with the nouns captions use for it."""

from __future__ import annotations

from typing import Callable

import numpy as np

from nctool.data.synth.canvas import (
    ASPHALT,
    BLACK,
    COLORS,
    CONCRETE,
    DRY_GRASS,
    GRASS,
    SOIL,
    WATER,
    WHITE,
    Canvas,
    tint,
)
from nctool.data.synth.captions import (
    OPPOSITE,
    ORIENT,
    SIDES,
    Fact,
    at,
    count_fact,
    fact,
    heads,
    number,
    orient,
    pick,
    running,
    where,
    where_all,
    where_centre,
)
from nctool.data.synth.pieces import (
    CAR_COLORS,
    build_houses,
    canopy,
    car,
    edge_frame,
    fields,
    free_spot,
    free_spots,
    grove,
    house,
    lined_field,
    parking_lot,
    patch,
    place,
    plane,
    raised,
    ring,
    river_with_banks,
    road,
    round_roof,
    scatter_trees,
    spot,
    tree,
)

Scene = Callable[[Canvas, np.random.Generator], list[Fact]]
SCENES: dict[str, tuple[Scene, tuple[str, ...]]] = {}  # class -> (drawing function, scene nouns)


def scene(category: str, nouns: tuple[str, ...]) -> Callable[[Scene], Scene]:
    """Register the decorated function as the drawing of `category`; captions call the scene `nouns`."""
    def register(draw: Scene) -> Scene:
        SCENES[category] = (draw, nouns)
        return draw
    return register


@scene("airport", ("airport", "airfield"))
def airport(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill(pick(rng, (GRASS, DRY_GRASS)), 0.1)
    _, angle, adj, runs = orient(rng)
    ax, ay, nx, ny = np.cos(angle), np.sin(angle), -np.sin(angle), np.cos(angle)
    off = rng.uniform(-0.1, 0.1)
    side = -1 if off > 0 else 1  # the apron goes where there is more room
    rx, ry = 0.5 + off * nx, 0.5 + off * ny
    road(c, angle, 0.2, rx + side * 0.2 * nx, ry + side * 0.2 * ny, (0.5, 0.5, 0.5))  # apron
    road(c, angle, 0.1, rx, ry, texture=0.05)  # runway
    line, along, _ = c.band(angle, 0.012, rx, ry)
    c.paint(line * (np.sin(2 * np.pi * 7 * along) > 0), WHITE)  # dashed centre line

    t = rng.uniform(-0.2, 0.2)
    tcol = pick(rng, ("white", "gray", "blue"))
    tx, ty = rx + t * ax + side * 0.36 * nx, ry + t * ay + side * 0.36 * ny
    house(c, tx, ty, 0.4, 0.09, COLORS[tcol], angle)

    n = int(rng.integers(1, 6))
    pcol = pick(rng, ("white", "white", "blue", "red"))
    start = rng.uniform(-0.35, 0.35 - 0.14 * (n - 1))
    planes = [(rx + (start + 0.14 * k) * ax + side * 0.19 * nx, ry + (start + 0.14 * k) * ay + side * 0.19 * ny)
              for k in range(n)]
    for x, y in planes:
        plane(c, x, y, angle - side * np.pi / 2, 0.13, pcol)  # nose towards the runway
    parked = where_centre(planes)
    return [
        fact([f"a {adj} runway"], ["crossing the airport", "through the middle"], plural=False)
        + fact(["a long runway", "a runway"], running(runs), plural=False),
        fact(heads(n, "plane", (pcol, pcol, "")) + heads(n, "airplane", (pcol,)),
             at(parked, "parked") + [f"parked beside the runway {p}" for p in parked], plural=n > 1),
        fact([f"a {tcol} terminal building", f"a long {tcol} building"], at(where(tx, ty), "standing"),
             plural=False),
    ]


@scene("baseball_field", ("baseball park", "baseball complex", "ballpark"))
def baseball_field(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill(GRASS, 0.1)
    n = int(rng.integers(1, 4))
    if n == 1:
        centres, r = [spot(rng)], 0.27
    else:
        quads = np.array([(0.27, 0.27), (0.73, 0.27), (0.27, 0.73), (0.73, 0.73)])
        centres, r = [tuple(q + rng.uniform(-0.03, 0.03, 2)) for q in rng.permutation(quads)[:n]], 0.22
    taken = []
    for x, y in centres:
        # the fan opens diagonally towards the image centre, so it stays in the picture
        angle = np.arctan2(0.5 - y + 1e-3, 0.5 - x + 1e-3)
        angle = np.round((angle - np.pi / 4) / (np.pi / 2)) * np.pi / 2 + np.pi / 4
        px, py = x - 0.45 * r * np.cos(angle), y - 0.45 * r * np.sin(angle)  # home plate
        c.shape(px, py, r + 0.02, 0, tint(rng, (0.62, 0.5, 0.36)), angle, "fan")  # warning track
        c.shape(px, py, r, 0, tint(rng, (0.5, 0.72, 0.32)), angle, "fan")
        c.shape(px, py, 0.55 * r, 0, tint(rng, (0.72, 0.52, 0.36)), angle, "fan")
        dx, dy = 0.21 * r * np.cos(angle), 0.21 * r * np.sin(angle)
        c.shape(px + dx, py + dy, 0.3 * r, 0.3 * r, (0.45, 0.66, 0.32), angle + np.pi / 4)
        c.shape(px, py, 0.1 * r, 0.1 * r, (0.72, 0.52, 0.36), kind="ellipse")
        taken.append((x - 0.6 * r, y - 0.6 * r, x + 0.6 * r, y + 0.6 * r))
    diamonds = heads(n, "baseball field") + heads(n, "baseball diamond")
    facts = [fact(diamonds, where_all(centres), plural=n > 1)]
    around = "around the fields" if n > 1 else "around the field"
    setting = pick(rng, ("trees", "houses", "parking"))
    if setting == "trees":
        scatter_trees(c, 25, taken)
        facts.append(fact(["many green trees", "lots of trees"], [around, "between the fields" if n > 1 else
                                                                   "next to the field"]))
    elif setting == "houses":
        houses = free_spots(rng, taken, int(rng.integers(2, 6)), 0.12, 0.08)
        roof = pick(rng, ("red", "gray", "white", "brown"))
        build_houses(c, houses, 0.1, 0.07, roof)
        near = ["near the fields" if n > 1 else "near the field"]
        facts.append(count_fact(len(houses), "house", (f"{roof}-roofed", ""),
                                (at(where_all(houses)) if houses else []) + near))
    else:
        lot = free_spot(rng, taken, 0.3, 0.2)
        if lot:
            x, y = lot
            surface = tint(rng, ASPHALT)
            n_cars = int(rng.integers(2, 8))
            cars = [(x - 0.12 + 0.04 * k, y - 0.04 + 0.08 * (k % 2)) for k in range(n_cars)]  # two staggered rows
            # its own colour order, not CAR_COLORS: the same random draws must give the same (pinned) cars
            parking_lot(c, x, y, 0.3, 0.2, surface, cars, colors=("white", "red", "blue", "black"))
            facts.append(fact([f"a small parking lot with {number(n_cars)} cars", "a parking lot"],
                              at(where(x, y)), plural=False))
    return facts


@scene("beach", ("beach", "seaside beach", "coastal beach"))
def beach(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    side = pick(rng, ("left", "right", "top", "bottom"))  # where the sea is
    depth, along, xy = edge_frame(c, side)
    shore = rng.uniform(0.3, 0.42) + 0.03 * np.sin(2 * np.pi * rng.uniform(0.7, 1.5) * along + rng.uniform(0, 6.3))
    sand_w = rng.uniform(0.18, 0.26)
    sand_name, sand = pick(rng, (("yellow", (0.88, 0.78, 0.5)), ("white", (0.93, 0.9, 0.82))))
    c.fill(sand, 0.05)
    land = pick(rng, ("trees", "buildings", "grass"))
    inland = np.clip((depth - shore - sand_w) * c.size + 0.5, 0, 1)
    if land == "trees":
        canopy(c, inland)
    else:
        c.paint(inland, GRASS, 0.1)
    # sea: turquoise in the shallows, deep blue further out, white surf at the shore
    shallow = np.clip((depth - shore + 0.15) / 0.15, 0, 1)[..., None]
    water = np.asarray((0.08, 0.22, 0.42)) * (1 - shallow) + np.asarray((0.2, 0.55, 0.62)) * shallow
    c.paint(np.clip((shore - depth) * c.size + 0.5, 0, 1), water, 0.04)
    c.paint(np.clip(0.5 - np.abs(depth - shore + 0.01) * c.size, 0, 1) * 0.7, WHITE)

    facts = [fact(["blue sea water", "a calm blue sea", "calm blue water"], list(SIDES[side]), plural=False),
             fact([f"a strip of {sand_name} sand", f"{sand_name} sand"], ["along the water", "along the shore",
                  "between the sea and the land"], plural=False)]
    shore_at = shore.ravel()  # shore depth at each pixel along the shore
    if land == "buildings":  # a row of hotels just behind the sand
        roof = pick(rng, ("red", "white", "gray"))
        k = int(rng.integers(2, 6))
        hotels = [xy(shore_at[int(a * c.size)] + sand_w + 0.09, a) for a in np.linspace(0.12, 0.88, k)]
        build_houses(c, hotels, 0.12, 0.09, roof)
        facts.append(fact(heads(k, "building", (f"{roof}-roofed", "")), list(SIDES[OPPOSITE[side]])
                          + ["behind the beach", "in a row behind the sand"]))
    else:
        facts.append(fact(["green trees", "dense trees"] if land == "trees" else ["green grass", "a green lawn"],
                          list(SIDES[OPPOSITE[side]]) + ["behind the beach"], plural=land == "trees"))
    n = int(rng.integers(0, 7))
    umbrellas = [xy(shore_at[int(a * c.size)] + rng.uniform(0.3, 0.7) * sand_w, a) for a in rng.uniform(0.08, 0.92, n)]
    for x, y in umbrellas:
        raised(c, x, y, 0.05, 0.05, COLORS[pick(rng, ("red", "blue", "yellow", "orange"))], kind="ellipse",
               height=0.01, shadow=0.3)
    facts.append(count_fact(n, "umbrella", ("colorful", "beach"), ["on the sand", "on the beach"]))
    return facts


@scene("bridge", ("bridge area", "river crossing"))
def bridge(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    n = int(rng.integers(1, 3))
    slots = rng.permutation([-0.3, 0.0, 0.3])[:n]  # where along the river the bridges cross
    water = river_with_banks(c, rng, amp=0.0, kinds=("trees", "grass", "houses"),
                             orientations=("horizontal", "vertical"), crossings=slots)
    across = water.angle + np.pi / 2
    bridges, cars = [], 0
    for t in slots:
        bx, by = water.x + t * np.cos(water.angle), water.y + t * np.sin(water.angle)
        c.shape(bx, by, 3, 0.06, tint(rng, ASPHALT), across)  # the road, beyond the image
        c.shape(bx, by, water.width + 0.12, 0.075, tint(rng, CONCRETE, 0.04), across)  # the deck
        for s in rng.permutation([-0.25, 0.0, 0.25])[:int(rng.integers(0, 3))] * water.width:  # distinct places
            lane = pick(rng, (-0.015, 0.015))
            car(c, bx + s * np.cos(across) - lane * np.sin(across), by + s * np.sin(across) + lane * np.cos(across),
                across, pick(rng, CAR_COLORS))
            cars += 1
        bridges.append((bx, by))
    on = "on the bridges" if n > 1 else "on the bridge"
    facts = [fact(heads(n, "bridge"), [f"crossing the {water.adjective} river", f"over a {water.color} river"]
                  + at(where_all(bridges), "crossing the river"), plural=n > 1),
             count_fact(cars, "car", ("",), [on, "driving " + on])]
    return facts + water.banks


@scene("center", ("city center", "town center", "civic center"))
def center(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill(CONCRETE, 0.05)
    x, y = spot(rng, 0.02, 0.2)
    r = rng.uniform(0.12, 0.16)
    lawn = r + rng.uniform(0.05, 0.08)
    # roads leave the building to the right / bottom / left / top, where there is room to see them
    room = [1 - x, 1 - y, x, y]
    ways = [k for k in rng.permutation(4) if room[k] > lawn + 0.12][:int(rng.integers(2, 5))]
    k = len(ways)
    for angle in np.asarray(ways) * np.pi / 2 + rng.uniform(-0.2, 0.2):
        c.shape(x + np.cos(angle), y + np.sin(angle), 2, 0.06, tint(rng, ASPHALT), angle)
    c.shape(x, y, 2 * lawn, 2 * lawn, tint(rng, GRASS), kind="ellipse")
    for tx, ty in ring(x, y, lawn - 0.03, 12):
        tree(c, tx, ty, 0.025)
    roof = pick(rng, ("white", "gray", "blue", "green", "red"))
    round_roof(c, x, y, r, tint(rng, COLORS[roof]), inner=1.3, darker=0.8, glint=0.7, brighter=1.25)
    return [
        fact([f"a round {roof} building", f"a large circular {roof} building",
              f"a circular building with a {roof} roof"], at(where(x, y), "standing"), plural=False),
        fact(heads(k, "road", ("straight", "")), ["leading to the round building", "radiating from the building"]),
        fact(["a ring of trees", "a ring of green trees"], ["around the building", "surrounding the building"],
             plural=False),
    ]


@scene("church", ("church area", "churchyard"))
def church(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill(pick(rng, (GRASS, CONCRETE)), 0.08)
    _, angle, adj, _ = orient(rng, ("horizontal", "vertical"))
    x, y = spot(rng, 0.02, 0.22)
    roof = pick(rng, ("red", "gray", "brown", "green"))
    col = tint(rng, COLORS[roof])
    ax, ay = np.cos(angle), np.sin(angle)
    house(c, x, y, 0.34, 0.11, col, angle)  # nave
    house(c, x + 0.07 * ax, y + 0.07 * ay, 0.25, 0.09, col, angle + np.pi / 2)  # transept
    c.shape(x - 0.17 * ax, y - 0.17 * ay, 0.08, 0.08, col * 0.75, angle)  # tower
    taken = [(x - 0.22, y - 0.22, x + 0.22, y + 0.22)]
    facts = [fact([f"a cross-shaped church with a {roof} roof", f"a {roof}-roofed church",
                   f"a {adj} cross-shaped church"], at(where(x, y), "standing"), plural=False)]
    if rng.random() < 0.5:
        houses = free_spots(rng, taken, int(rng.integers(2, 7)), 0.11, 0.08)
        hroof = pick(rng, ("red", "gray", "white"))
        build_houses(c, houses, 0.11, 0.08, hroof)
        facts.append(count_fact(len(houses), "small house", (hroof + "-roofed", ""),
                                ["around the church", "near the church"]))
    else:
        trees = scatter_trees(c, int(rng.integers(3, 12)), taken)
        facts.append(count_fact(len(trees), "tree", ("green", ""), ["around the church", "near the church"]))
    return facts


@scene("dense_residential", ("dense residential area", "crowded residential district",
                             "densely built residential area"))
def dense_residential(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill((0.45, 0.45, 0.45), 0.05)
    layout = pick(rng, ("horizontal", "vertical", "grid"))
    if layout == "grid":
        rows, cols = [rng.uniform(0.3, 0.7)], [rng.uniform(0.3, 0.7)]
    else:  # one or two parallel roads
        lines = ([rng.uniform(0.3, 0.7)] if rng.random() < 0.5
                 else [0.33 + rng.uniform(-0.04, 0.04), 0.67 + rng.uniform(-0.04, 0.04)])
        rows, cols = (lines, []) if layout == "horizontal" else ([], lines)
    roof = pick(rng, ("red", "gray", "brown", "white", "blue"))
    others = [k for k in ("red", "gray", "brown", "white", "blue") if k != roof]
    pitch = 0.1
    for hy in np.arange(0.06, 1, pitch):
        for hx in np.arange(0.06, 1, pitch):
            if any(abs(hy - r) < 0.08 for r in rows) or any(abs(hx - q) < 0.08 for q in cols):
                continue
            color = roof if rng.random() < 0.85 else pick(rng, others)
            house(c, hx + rng.uniform(-0.01, 0.01), hy + rng.uniform(-0.01, 0.01), 0.08, 0.07, COLORS[color])
    for r in rows:
        road(c, 0, 0.07, 0.5, r)
    for q in cols:
        road(c, np.pi / 2, 0.07, q, 0.5)
    if layout == "grid":
        roads = fact(["two roads", "a horizontal and a vertical road"],
                     [f"crossing {p}" for p in where(cols[0], rows[0])] + ["dividing the houses into four blocks"])
    else:
        n = len(rows or cols)
        roads = (fact(heads(n, "road", (layout,)), ["crossing the area", "running between the houses"], n > 1)
                 + fact(heads(n, "straight road"), running(ORIENT[layout][2]), n > 1))
    return [fact([f"many {roof}-roofed houses", f"lots of houses with {roof} roofs", f"countless {roof} roofs"],
                 ["packed closely together", "arranged in tight rows", "crowded together"]), roads]


@scene("sparse_residential", ("sparse residential area", "suburban residential area",
                              "quiet residential neighborhood"))
def sparse_residential(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill(GRASS, 0.12)
    _, angle, adj, runs = orient(rng)
    ax, ay, nx, ny = np.cos(angle), np.sin(angle), -np.sin(angle), np.cos(angle)
    road(c, angle, 0.06)
    n = int(rng.integers(2, 7))
    roof = pick(rng, ("red", "gray", "white", "brown", "blue"))
    taken = []
    lots = [(t, side) for t in np.linspace(-0.36, 0.36, 5) for side in (-1, 1)]  # along the road, either side
    for t, side in (lots[i] for i in rng.permutation(len(lots))[:n]):
        hx, hy = 0.5 + t * ax + side * 0.14 * nx, 0.5 + t * ay + side * 0.14 * ny
        c.shape(0.5 + t * ax + side * 0.06 * nx, 0.5 + t * ay + side * 0.06 * ny, 0.03, 0.06, CONCRETE,
                angle + np.pi / 2)  # driveway
        house(c, hx, hy, 0.13, 0.09, COLORS[roof], angle)
        taken.append((hx - 0.09, hy - 0.09, hx + 0.09, hy + 0.09))
    road_ok = lambda x, y: abs((y - 0.5) * np.cos(angle) - (x - 0.5) * np.sin(angle)) > 0.07  # noqa: E731
    trees = scatter_trees(c, int(rng.integers(2, 12)), taken, ok=road_ok)
    return [
        fact(heads(n, "house", (f"{roof}-roofed", "")) + heads(n, "house", (f"detached {roof}-roofed",)),
             ["along the road", f"beside a {adj} road", "scattered along the road"]),
        fact([f"a {adj} road"], ["through the neighborhood", "between the houses"], plural=False)
        + fact(["a narrow road", "a road"], running(runs), plural=False),
        count_fact(len(trees), "tree", ("green", ""), ["around the houses", "on the lawns", "scattered on the grass"]),
    ]


@scene("desert", ("desert", "desert area", "stretch of desert"))
def desert(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    name, sand = pick(rng, (("yellow", (0.86, 0.72, 0.44)), ("orange", (0.8, 0.5, 0.3)),
                            ("pale", (0.88, 0.84, 0.72))))
    c.fill(sand, 0.06, 3)
    _, angle, adj, runs = orient(rng)
    # dune ridges run along `angle`: brightness varies across it, bent by a little noise
    across = (c.y - 0.5) * np.cos(angle) - (c.x - 0.5) * np.sin(angle) + 0.04 * c.noise(3)
    c.img *= (1 + 0.13 * np.sin(2 * np.pi * rng.uniform(5, 8) * across))[..., None]
    facts = [fact([f"{adj} ridges of {name} sand", f"{adj} {name} sand dunes"], ["covering the ground"])
             + fact([f"{name} sand dunes", f"ridges of {name} sand"], running(runs))]
    extra = pick(rng, ("road", "shrubs", "none"))
    if extra == "road":
        _, rangle, radj, rruns = orient(rng)
        road(c, rangle, 0.045, *spot(rng))
        facts.append(fact([f"a straight {radj} road"], ["crossing the desert"], plural=False)
                     + fact(["a dark road"], [f"crossing the desert {r}" for r in rruns], plural=False))
    elif extra == "shrubs":
        shrubs = grove(c, int(rng.integers(2, 8)), 0.022, (0.3, 0.36, 0.18))
        facts.append(count_fact(len(shrubs), "small shrub", ("dark green", ""), at(where_centre(shrubs), "growing")))
    return facts


@scene("farmland", ("farmland", "farming area", "piece of farmland"))
def farmland(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill(SOIL, 0.05)  # the paths between the fields
    nr, nc = int(rng.integers(2, 4)), int(rng.integers(2, 4))
    ys = np.linspace(0, 1, nr + 1) + np.r_[0, rng.uniform(-0.05, 0.05, nr - 1), 0]
    xs = np.linspace(0, 1, nc + 1) + np.r_[0, rng.uniform(-0.05, 0.05, nc - 1), 0]
    crops = {"green": (0.3, 0.52, 0.22), "yellow": (0.82, 0.74, 0.38), "brown": (0.58, 0.44, 0.3)}
    main = pick(rng, tuple(crops))
    odd = pick(rng, [k for k in crops if k != main])
    odd_cells = set(rng.permutation(nr * nc)[:int(rng.integers(1, 3))].tolist())
    odd_centres = []
    for i in range(nr * nc):
        r, k = divmod(i, nc)
        name = odd if i in odd_cells else main
        if i in odd_cells:
            odd_centres.append(((xs[k] + xs[k + 1]) / 2, (ys[r] + ys[r + 1]) / 2))
        rows = 1 + 0.1 * np.sin(2 * np.pi * c.size / 3 * (c.x if rng.random() < 0.5 else c.y))  # crop rows
        c.paint(c.box(xs[k] + 0.012, ys[r] + 0.012, xs[k + 1] - 0.012, ys[r + 1] - 0.012),
                tint(rng, crops[name], 0.05) * rows[..., None], 0.06, 4)
    n_odd = len(odd_centres)
    return [
        fact([f"{number(nr * nc)} rectangular fields", f"{number(nr * nc)} fields"],
             [f"arranged in {number(nr)} rows", "divided by narrow paths",
              f"in a {number(nr)} by {number(nc)} grid"]),
        fact([f"mostly {main} fields", f"{main} crops"], ["covering most of the land", "filling most of the plots"]),
        fact(heads(n_odd, "field", (odd,)) + heads(n_odd, f"{odd} plot", ("single",) if n_odd == 1 else ("",)),
             where_all(odd_centres) + [f"{p} among the {main} ones" for p in where_all(odd_centres)],
             plural=n_odd > 1),
    ]


@scene("forest", ("forest", "forest area", "woodland"))
def forest(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    kind = pick(rng, ("dark green", "green", "autumn"))
    palette = {"dark green": [(0.1, 0.22, 0.1)], "green": [(0.2, 0.4, 0.15)],
               "autumn": [(0.2, 0.38, 0.14), (0.75, 0.45, 0.15), (0.8, 0.68, 0.2), (0.6, 0.25, 0.12)]}[kind]
    canopy(c, np.ones((c.size, c.size)), palette)
    trees = (["colorful autumn trees", "orange, yellow and green trees"] if kind == "autumn"
             else [f"dense {kind} trees", f"many {kind} trees"])
    facts = [fact(trees, ["covering the whole area", "growing closely together"])]
    feature = pick(rng, ("road", "clearing", "lake"))
    if feature == "road":
        _, angle, adj, runs = orient(rng)
        road(c, angle, 0.05, *spot(rng), (0.62, 0.52, 0.4), 0.05, amp=0.03, waves=0.8)
        facts.append(fact([f"a {adj} dirt road"], ["through the forest", "cutting through the trees"], plural=False)
                     + fact(["a narrow road"], running(runs, " through the forest"), plural=False))
    elif feature == "clearing":
        x, y = spot(rng, 0.03)
        patch(c, x, y, (0.22, 0.3), (0.18, 0.24), GRASS)
        facts.append(fact(["a small clearing", "an open patch of grass"], at(where(x, y)), plural=False))
    else:
        x, y = spot(rng, 0.03)
        patch(c, x, y, (0.18, 0.26), (0.14, 0.2), WATER)
        facts.append(fact(["a small lake", "a dark pond"], at(where(x, y), "hidden among the trees"), plural=False))
    return facts


@scene("industrial", ("industrial area", "industrial park", "factory district"))
def industrial(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill((0.56, 0.54, 0.5), 0.06)
    nc = pick(rng, (2, 3))
    slots = [((k + 0.5) / nc, (r + 0.5) / 2) for r in range(2) for k in range(nc)]
    n = int(rng.integers(2, len(slots) + 1))
    order = rng.permutation(len(slots))
    built, empty = [slots[i] for i in order[:n]], [slots[i] for i in order[n:]]
    road(c, 0, 0.06)
    for k in range(1, nc):
        road(c, np.pi / 2, 0.06, k / nc, 0.5)
    roof = pick(rng, ("white", "gray", "blue"))
    w, h = 0.75 / nc, 0.3
    for x, y in built:
        house(c, x, y, w, h, COLORS[roof])
        for k in (-1, 1):  # skylight strips along the roof
            c.shape(x, y + k * h / 4, w * 0.9, 0.012, BLACK, alpha=0.25)
    trucks = []
    for x, y in built[:int(rng.integers(0, 4))]:
        tx, ty = x + rng.uniform(-w / 3, w / 3), y + pick(rng, (-1, 1)) * (h / 2 + 0.045)
        raised(c, tx, ty, 0.1, 0.04, tint(rng, WHITE, 0.03), height=0.01, shadow=0.35)
        trucks.append((tx, ty))
    facts = [
        fact(heads(n, "factory building", (f"large {roof}", "large"))
             + heads(n, "warehouse", (f"big {roof}-roofed",)),
             ["arranged in rows", "standing close together", "lined up along the roads"]),
        count_fact(len(trucks), "truck", ("white", ""), ["parked beside the buildings", "next to the factories"]),
    ]
    if empty:
        facts.append(fact(heads(len(empty), "empty lot", ("",)), where_all(empty), plural=len(empty) > 1))
    return facts


@scene("intersection", ("intersection", "road intersection", "junction area"))
def intersection(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    corners = pick(rng, ("trees", "buildings"))
    c.fill(GRASS if corners == "trees" else CONCRETE, 0.08)
    jx, jy = 0.5 + rng.uniform(-0.1, 0.1), 0.5 + rng.uniform(-0.1, 0.1)
    w = 0.14
    # the arms that leave the junction: all four for a crossroads, three for a T-junction
    arms = [0.0, np.pi / 2, np.pi, -np.pi / 2]
    tee = rng.random() < 0.5
    if tee:
        stem = int(rng.integers(4))
        arms.pop((stem + 2) % 4)  # the arm opposite the stem is missing
    quads = [(jx + dx * 0.3, jy + dy * 0.3) for dx in (-1, 1) for dy in (-1, 1)]
    roof = pick(rng, ("red", "gray", "white"))
    for x, y in quads:
        if corners == "trees":
            for _ in range(3):
                tree(c, x + rng.uniform(-0.08, 0.08), y + rng.uniform(-0.08, 0.08), 0.035)
        else:
            house(c, x, y, 0.18, 0.14, COLORS[roof])
    for a in arms:
        ax, ay = np.cos(a), np.sin(a)
        c.shape(jx + ax, jy + ay, 2, w, tint(rng, ASPHALT, 0.03), a)  # the arm, out past the edge
    c.shape(jx, jy, w, w, ASPHALT)
    for a in arms:
        ax, ay = np.cos(a), np.sin(a)
        for t in np.arange(w / 2 + 0.1, 0.9, 0.08):  # dashed centre line
            c.shape(jx + t * ax, jy + t * ay, 0.04, 0.01, WHITE, a, alpha=0.8)
        for s in np.linspace(-w / 2 + 0.015, w / 2 - 0.015, 5):  # zebra crossing
            c.shape(jx + (w / 2 + 0.04) * ax - s * ay, jy + (w / 2 + 0.04) * ay + s * ax, 0.05, 0.012, WHITE, a)
    n = int(rng.integers(0, 8))
    color = pick(rng, CAR_COLORS)
    same = rng.random() < 0.5  # all cars one colour, or mixed
    places = [(a, t, lane) for a in arms for t in (0.17, 0.27, 0.37) for lane in (-w / 4, w / 4)]
    for i in rng.permutation(len(places))[:n]:  # distinct places, so every car can be seen
        a, t, lane = places[i]
        x, y = jx + t * np.cos(a) - lane * np.sin(a), jy + t * np.sin(a) + lane * np.cos(a)
        car(c, x, y, a + (np.pi if lane > 0 else 0), color if same else pick(rng, CAR_COLORS))
    if tee:
        side = {0: "right", 1: "bottom", 2: "left", 3: "top"}[stem]
        junction = fact(["a T-shaped junction", "a three-way intersection", "a T-junction"], at(where(jx, jy)),
                        plural=False)
        shape = fact(["a side road"], [f"branching off to the {side}", f"joining from the {side}"], plural=False)
    else:
        junction = fact(["a crossroads", "a four-way intersection", "a junction of two roads"], at(where(jx, jy)),
                        plural=False)
        shape = fact(["a horizontal road and a vertical road", "two straight roads"], ["crossing each other"])
    cars = count_fact(n, "car", (color, "") if same else ("",),
                      ["on the roads", "driving on the roads", "near the intersection"])
    around = (fact(["green trees", "clumps of trees"], ["at the corners", "beside the roads"]) if corners == "trees"
              else fact([f"{roof}-roofed buildings", "four buildings"], ["at the corners", "on each corner"]))
    return [junction, shape, cars, around]


@scene("meadow", ("meadow", "grassland", "open meadow"))
def meadow(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    name, grass = pick(rng, (("green", (0.38, 0.55, 0.24)), ("yellow-green", (0.55, 0.58, 0.3)),
                             ("dry yellow", (0.72, 0.64, 0.4))))
    c.fill(grass, 0.12, 4)
    c.img *= (1 + 0.06 * c.noise(c.size / 2))[..., None]  # blades and tufts
    facts = [fact([f"{name} grass", f"a large area of {name} grass", f"{name} grassland"],
                  ["covering the ground", "stretching across the image"], plural=False)]
    if rng.random() < 0.5:
        _, angle, _, runs = orient(rng)
        road(c, angle, 0.025, *spot(rng), (0.66, 0.58, 0.45), 0.05, amp=0.05)
        facts.append(fact(["a winding dirt path", "a narrow path"], running(runs), plural=False))
    trees = grove(c, int(rng.integers(0, 7)))
    standing = at(where_centre(trees), "standing") if trees else ["on the grass"]
    facts.append(count_fact(len(trees), "tree", ("green", ""), standing))
    return facts


@scene("mountain", ("mountain area", "mountainous area", "mountain landscape"))
def mountain(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    h = c.noise(2) + 0.5 * c.noise(4) + 0.35 * np.abs(c.noise(8)) + 0.15 * c.noise(16)
    h = (h - h.min()) / (h.max() - h.min())
    gy, gx = np.gradient(h, 1 / c.size)  # slopes per image width
    shade = np.clip(1 + 0.19 * (gx + gy), 0.5, 1.5)  # lit from the upper left
    kind = pick(rng, ("green", "brown", "gray"))
    low = np.asarray({"green": (0.25, 0.42, 0.2), "brown": (0.55, 0.42, 0.3), "gray": (0.5, 0.5, 0.5)}[kind])
    col = low * (1 - h[..., None]) + np.asarray((0.55, 0.5, 0.45)) * h[..., None]
    facts = [fact({"green": ["green mountains", "mountains covered with green vegetation"],
                   "brown": ["bare brown mountains", "brown rocky mountains"],
                   "gray": ["gray rocky mountains", "gray mountain ridges"]}[kind],
                  ["covering the whole area", "separated by deep valleys", "stretching across the image"])]
    if rng.random() < 0.5:
        snow = np.clip((h - rng.uniform(0.6, 0.72)) * 15, 0, 1)[..., None]
        col = col * (1 - snow) + np.asarray((0.95, 0.96, 0.98)) * snow
        facts.append(fact(["white snow", "snow"], ["on the peaks", "covering the mountain tops"], plural=False))
    else:
        facts.append(fact(["no snow"], ["on the mountains", "on the peaks"], plural=False))
    c.img[:] = col * shade[..., None]
    if rng.random() < 0.5:  # a lake in the lowest valley away from the edges
        inner = h[c.size // 5:-c.size // 5, c.size // 5:-c.size // 5]
        iy, ix = np.unravel_index(np.argmin(inner), inner.shape)
        x, y = (ix + c.size // 5 + 0.5) / c.size, (iy + c.size // 5 + 0.5) / c.size
        patch(c, x, y, (0.14, 0.2), (0.09, 0.13), WATER)
        facts.append(fact(["a small lake", "a small blue lake"], at(where(x, y), "lying in a valley"), plural=False))
    return facts


@scene("parking", ("parking lot", "car park", "parking area"))
def parking(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill((0.4, 0.4, 0.41), 0.05)
    ori, angle, adj, _ = orient(rng, ("horizontal", "vertical"))
    nr = int(rng.integers(2, 5))
    fill, occupancy = pick(rng, ((0.9, "full"), (0.5, "half"), (0.2, "few")))
    rows = 0.5 + 0.22 * (np.arange(nr) - (nr - 1) / 2)
    slots = np.arange(0.1, 0.91, 0.08)
    # (row, slot) -> car colour; one car stands out in red or yellow
    taken = {(r, s): pick(rng, ("white", "white", "black", "blue"))
             for r in range(nr) for s in range(len(slots)) if rng.random() < fill}
    odd_slot = (int(rng.integers(nr)), int(rng.integers(len(slots))))
    odd = taken[odd_slot] = pick(rng, ("red", "yellow"))

    def xy(row: float, along: float) -> tuple[float, float]:
        return (along, row) if ori == "horizontal" else (row, along)

    for r, row in enumerate(rows):
        for along in np.append(slots, slots[-1] + 0.08) - 0.04:  # stall lines
            c.shape(*xy(row, along), 0.1, 0.006, WHITE, angle + np.pi / 2, alpha=0.8)
        for s, along in enumerate(slots):
            if (r, s) in taken:
                car(c, *xy(row + rng.uniform(-0.005, 0.005), along), angle + np.pi / 2 * pick(rng, (1, -1)),
                    taken[(r, s)])
    n = len(taken)
    space = {"full": (["few empty spaces", "almost no free spaces"], ["left in the lot", "between the cars"]),
             "half": (["many empty spaces", "plenty of free spaces"], ["between the parked cars", "in the lot"]),
             "few": (["mostly empty parking spaces", "lots of empty spaces"], ["in the lot", "around the few cars"])}
    return [
        fact(heads(n, "car"), [f"parked in {number(nr)} {adj} rows", f"parked in {number(nr)} rows",
                               "parked neatly"], plural=n != 1),
        fact(*space[occupancy]),
        fact([f"a {odd} car", f"a single {odd} car"],
             at(where(*xy(rows[odd_slot[0]], slots[odd_slot[1]])), "parked"), plural=False),
    ]


@scene("playground", ("playground", "sports ground", "school playground"))
def playground(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill(pick(rng, (GRASS, CONCRETE)), 0.08)
    _, angle, _, runs = orient(rng, ("horizontal", "vertical"))
    x, y = spot(rng, 0.02, 0.2)
    name, track = pick(rng, (("red", (0.7, 0.3, 0.25)), ("blue", (0.25, 0.4, 0.65)), ("green", (0.3, 0.55, 0.35))))
    c.shape(x, y, 0.5, 0.3, tint(rng, track, 0.04), angle, "capsule")
    c.shape(x, y, 0.4, 0.2, tint(rng, (0.3, 0.55, 0.22), 0.04), angle, "capsule")
    lined_field(c, x, y, 0.3, 0.15, (0.32, 0.58, 0.24), angle)
    c.shape(x, y, c.px * 1.2, 0.15, WHITE, angle)  # halfway line
    facts = [
        fact([f"a {name} running track", f"an oval {name} track", f"a {name} athletic track"],
             at(where(x, y)) + [f"lying {r}" for r in runs], plural=False),
        fact(["a green football field", "a soccer field"],
             ["inside the track", f"in the middle of the {name} track", f"surrounded by the {name} track"],
             plural=False),
    ]
    taken = [(x - 0.27, y - 0.27, x + 0.27, y + 0.27)]
    if rng.random() < 0.5:
        roof = pick(rng, ("red", "gray", "white", "blue"))
        blocks = free_spots(rng, taken, int(rng.integers(1, 5)), 0.2, 0.12)
        build_houses(c, blocks, 0.2, 0.12, roof)
        facts.append(count_fact(len(blocks), "building", (f"{roof}-roofed", ""),
                                at(where_all(blocks)) if blocks else ["near the track"]))
    else:
        trees = scatter_trees(c, int(rng.integers(3, 15)), taken)
        facts.append(count_fact(len(trees), "tree", ("green", ""), ["around the playground", "around the track"]))
    return facts


@scene("pond", ("pond area", "lakeside area", "park with a pond"))
def pond(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    if rng.random() < 0.5:
        c.fill(GRASS, 0.12)
    else:
        fields(c, np.ones((c.size, c.size)))
    x, y = spot(rng, 0.03)
    r = rng.uniform(0.1, 0.14)
    # an irregular outline: a main ellipse and two smaller ones overlapping its rim
    blobs = [(x, y, 2 * r * rng.uniform(1.1, 1.4), 2 * r * rng.uniform(0.8, 1.0), rng.uniform(0, np.pi))]
    for a in rng.uniform(0, 2 * np.pi, 2):
        blobs.append((x + 0.6 * r * np.cos(a), y + 0.6 * r * np.sin(a), r * 1.2, r * 0.9, a))
    name, water = pick(rng, (("blue", (0.15, 0.32, 0.52)), ("green", (0.22, 0.4, 0.3)), ("dark", (0.08, 0.14, 0.18))))
    for bx, by, w, h, a in blobs:
        c.shape(bx, by, w + 0.03, h + 0.03, (0.3, 0.4, 0.2), a, "ellipse")  # reedy shore
    for bx, by, w, h, a in blobs:
        c.shape(bx, by, w, h, water, a, "ellipse")
    facts = [fact([f"a {name} pond", f"a small {name} lake", f"an irregular {name} pond"],
                  at(where(x, y), "lying"), plural=False)]
    shore = [p for p in ring(x, y, 1.6 * r, 10) if 0.04 < p[0] < 0.96 and 0.04 < p[1] < 0.96]  # in the picture
    trees = [shore[i] for i in sorted(rng.permutation(len(shore))[:int(rng.integers(0, len(shore) + 1))])]
    for tx, ty in trees:
        tree(c, tx, ty, 0.035)
    facts.append(count_fact(len(trees), "tree", ("green", ""), ["around the pond", "along the shore"]))
    extra = pick(rng, ("island", "boat", "none"))
    if extra == "island":
        c.shape(x, y, 0.06, 0.05, tint(rng, GRASS), kind="ellipse")
        tree(c, x, y, 0.02)
        facts.append(fact(["a small island", "a tiny green island"], ["in the pond", "in the middle of the water"],
                          plural=False))
    elif extra == "boat":
        c.shape(x, y, 0.06, 0.025, WHITE, rng.uniform(0, np.pi), "ellipse")
        facts.append(fact(["a small white boat", "a little boat"], ["on the water", "in the pond"], plural=False))
    return facts


@scene("port", ("port", "harbor", "seaport"))
def port(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    side = pick(rng, ("left", "right", "top", "bottom"))  # where the sea is
    depth, _, xy = edge_frame(c, side)
    out = {"left": np.pi, "right": 0.0, "top": -np.pi / 2, "bottom": np.pi / 2}[side]  # pointing out to sea
    quay = rng.uniform(0.45, 0.55)
    c.fill(CONCRETE, 0.05)
    c.paint(np.clip((quay - depth) * c.size + 0.5, 0, 1), (0.1, 0.24, 0.4), 0.05, 3)
    k = int(rng.integers(1, 4))
    piers = np.sort(rng.permutation([0.2, 0.5, 0.8])[:k])
    berths = []  # (x, y, heading) where a ship can lie: both sides of each pier, and along the quay
    for a in piers:
        c.shape(*xy(quay - 0.14, a), 0.3, 0.05, tint(rng, CONCRETE, 0.03), out)
        berths += [(*xy(quay - 0.16, a + s * 0.065), out) for s in (-1, 1)]
    berths += [(*xy(quay - 0.04, a), out + np.pi / 2) for a in (0.35, 0.65) if np.all(np.abs(piers - a) > 0.15)]
    n = int(rng.integers(1, len(berths) + 1))
    color = pick(rng, ("white", "red", "blue", "orange", "gray"))
    ships = [berths[i] for i in sorted(rng.permutation(len(berths))[:n])]
    for x, y, heading in ships:
        hx, hy = np.cos(heading), np.sin(heading)
        raised(c, x, y, 0.18, 0.05, tint(rng, COLORS[color], 0.05), heading, "ellipse", height=0.012, shadow=0.35)
        c.shape(x - 0.05 * hx, y - 0.05 * hy, 0.04, 0.032, tint(rng, WHITE if color != "white" else COLORS["gray"]),
                heading)  # the bridge house at the stern
    for d in np.arange(quay + 0.1, min(quay + 0.34, 0.95), 0.06):  # rows of containers on the wharf
        for a in np.arange(0.08, 0.93, 0.07):
            if rng.random() < 0.8:
                c.shape(*xy(d, a), 0.06, 0.045, tint(rng, COLORS[pick(rng, ("red", "blue", "green", "orange"))]),
                        out + np.pi / 2)
    moored = where_centre([s[:2] for s in ships])
    return [
        fact(heads(n, "ship", (color, "")) + heads(n, "boat", (color,)),
             at(moored, "moored") + ["docked at the piers", "moored in the harbor"], plural=n > 1),
        fact(heads(k, "pier", ("long", "")), ["stretching into the sea", "extending into the water"], plural=k > 1),
        fact(["blue sea water", "a harbor basin"], list(SIDES[side]), plural=False),
        fact(["rows of colorful containers", "many containers"], ["on the wharf"] + list(SIDES[OPPOSITE[side]])),
    ]


@scene("river", ("river valley", "riverside area", "river landscape"))
def river(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    water = river_with_banks(c, rng, amp=rng.uniform(0.03, 0.08), kinds=("trees", "fields", "grass", "houses"))
    size = "wide" if water.width > 0.18 else "narrow"
    flowing = fact([f"a {water.color} river", f"a winding {water.color} river", f"a {size} {water.color} river"],
                   running(water.runs) + [f"flowing {r}" for r in water.runs], plural=False)
    return [flowing, *water.banks]


@scene("snowfield", ("snowfield", "snowy area", "snow-covered land"))
def snowfield(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill((0.9, 0.92, 0.96), 0.03, 3)
    c.img -= (0.05 * np.clip(c.noise(4), -1, 1))[..., None] * np.asarray((1.0, 0.7, 0.3))  # blue-grey drifts
    facts = [fact(["white snow", "thick white snow"], ["covering the ground", "covering the whole area"],
                  plural=False)]
    if rng.random() < 0.5:
        _, angle, adj, runs = orient(rng)
        road(c, angle, 0.04, *spot(rng), (0.45, 0.45, 0.48), 0.05)
        facts.append(fact([f"a {adj} road"], ["crossing the snow", "through the snow"], plural=False)
                     + fact(["a gray road"], running(runs), plural=False))
    trees = grove(c, int(rng.integers(1, 10)), 0.03, (0.1, 0.2, 0.14))
    facts.append(count_fact(len(trees), "tree", ("dark", "dark green"), at(where_centre(trees), "standing")))
    return facts


@scene("stadium", ("stadium area", "sports venue", "stadium complex"))
def stadium(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill(pick(rng, (CONCRETE, GRASS)), 0.06)
    _, angle, _, runs = orient(rng, ("horizontal", "vertical"))
    x, y = 0.5 + rng.uniform(-0.04, 0.04), 0.5 + rng.uniform(-0.04, 0.04)
    seats = pick(rng, ("red", "blue", "white", "yellow", "orange"))
    raised(c, x, y, 0.8, 0.64, (0.78, 0.78, 0.8), angle, "ellipse", height=0.025, shadow=0.35)  # the roof
    c.shape(x, y, 0.7, 0.54, tint(rng, COLORS[seats], 0.04), angle, "ellipse")
    for a in np.arange(16) * np.pi / 8:  # aisles between the blocks of seats
        c.shape(x + 0.3 * np.cos(a), y + 0.23 * np.sin(a), 0.1, 0.012, (0.3, 0.3, 0.3), a, alpha=0.6)
    track = rng.random() < 0.5
    c.shape(x, y, 0.5, 0.36, (0.7, 0.3, 0.25) if track else (0.3, 0.55, 0.22), angle, "ellipse")
    lined_field(c, x, y, 0.34, 0.2, (0.3, 0.56, 0.22), angle)
    facts = [
        fact([f"an oval stadium with {seats} stands", f"a large stadium with {seats} seats"],
             ["in the middle", "in the center"] + [f"lying {r}" for r in runs], plural=False),
        fact(["a green football pitch", "a green pitch"],
             ["inside the stadium", "in the middle of the stands"]
             + (["surrounded by a red running track"] if track else []), plural=False),
    ]
    if track:
        facts.append(fact(["a red running track", "a red track"], ["around the pitch", "inside the stands"],
                          plural=False))
    if rng.random() < 0.6:
        px, py = pick(rng, ((0.12, 0.12), (0.88, 0.12), (0.12, 0.88), (0.88, 0.88)))
        n = int(rng.integers(1, 7))
        cars = [(px - 0.065 + 0.065 * (k % 3), py - 0.04 + 0.08 * (k // 3)) for k in range(n)]  # rows of three
        parking_lot(c, px, py, 0.2, 0.2, ASPHALT, cars)
        facts.append(fact([f"a parking lot with {number(n)} {'car' if n == 1 else 'cars'}", "a small parking lot"],
                          at(where(px, py)), plural=False))
    return facts


@scene("storage_tanks", ("storage tank area", "tank farm", "oil depot"))
def storage_tanks(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill(pick(rng, (CONCRETE, (0.7, 0.65, 0.52))), 0.06)
    nr, nc = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    n, step, r = nr * nc, 0.15, 0.06
    half_w, half_h = step * (nc - 1) / 2 + r + 0.02, step * (nr - 1) / 2 + r + 0.02
    x, y = place(rng, half_w, half_h)
    color = pick(rng, ("white", "green", "blue"))
    centres = [(x + step * (k - (nc - 1) / 2), y + step * (j - (nr - 1) / 2)) for j in range(nr) for k in range(nc)]
    for j in range(nr):  # a pipe along each row
        c.shape(x, y + step * (j - (nr - 1) / 2), step * (nc - 1) + 0.04, 0.012, (0.4, 0.4, 0.42))
    for tx, ty in centres:  # the darker disc is the floating roof
        round_roof(c, tx, ty, r, tint(rng, COLORS[color], 0.04), inner=1.5, darker=0.85, glint=0.6, brighter=1.15,
                   glint_alpha=0.7)
    if nr > 1 and nc > 1:
        layout = [f"arranged in {number(nr)} rows of {number(nc)}",
                  f"arranged in a {number(nr)} by {number(nc)} grid"]
    elif n > 1:
        layout = [f"lined up in a {'horizontal' if nr == 1 else 'vertical'} row", "standing in a single row"]
    else:
        layout = []
    group = where_centre(centres)
    facts = [fact(heads(n, "storage tank", (color, "")) + heads(n, "oil tank", (f"round {color}",)),
                  at(group, "standing") + [f"{lay} {p}" for lay in layout for p in group], plural=n > 1)]
    if rng.random() < 0.5:
        _, angle, adj, runs = orient(rng, ("horizontal", "vertical"))
        # alongside the group, on the side with more room
        if adj == "horizontal":
            rx, ry = 0.5, y + (half_h + 0.04) * (-1 if y > 0.5 else 1)
        else:
            rx, ry = x + (half_w + 0.04) * (-1 if x > 0.5 else 1), 0.5
        road(c, angle, 0.06, rx, ry)
        facts.append(fact([f"a {adj} road"], ["next to the tanks", "beside the tanks"], plural=False)
                     + fact(["a straight road"], running(runs), plural=False))
    return facts


@scene("tennis_court", ("tennis club", "tennis center", "sports club with tennis courts"))
def tennis_court(c: Canvas, rng: np.random.Generator) -> list[Fact]:
    c.fill(pick(rng, (GRASS, CONCRETE)), 0.08)
    _, angle, adj, runs = orient(rng, ("horizontal", "vertical"))
    n = int(rng.integers(1, 5))
    long, short, gap = 0.24, 0.12, 0.02
    name, surface = pick(rng, (("green", (0.25, 0.52, 0.3)), ("blue", (0.22, 0.38, 0.66)), ("red", (0.66, 0.3, 0.24))))
    span = n * short + (n - 1) * gap  # the courts lie side by side across their long axis
    w, h = (long, span) if adj == "horizontal" else (span, long)
    x, y = place(rng, w / 2 + 0.03, h / 2 + 0.03)
    c.shape(x, y, w + 0.06, h + 0.06, tint(rng, np.asarray(surface) * 0.7, 0.03))  # surround
    for k in range(n):
        s = (k - (n - 1) / 2) * (short + gap)
        cx, cy = (x, y + s) if adj == "horizontal" else (x + s, y)
        lined_field(c, cx, cy, long, short, tint(rng, surface, 0.03), angle)
        c.shape(cx, cy, 1.2 * c.px, short, (0.15, 0.15, 0.15), angle)  # the net
    courts = where(x, y)
    facts = [fact(heads(n, "tennis court", (name, name, "")),
                  at(courts) + [f"laid out {r}" for r in runs]
                  + ([f"side by side {p}" for p in courts] if n > 1 else []),
                  plural=n > 1)]
    taken = [(x - w / 2 - 0.05, y - h / 2 - 0.05, x + w / 2 + 0.05, y + h / 2 + 0.05)]
    trees = scatter_trees(c, int(rng.integers(0, 14)), taken)
    around = "around the courts" if n > 1 else "around the court"
    facts.append(count_fact(len(trees), "tree", ("green", ""), [around, "nearby"]))
    return facts
