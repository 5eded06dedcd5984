"""The words of the demo captions: counts, plurals, positions, orientations, facts and templates.

A scene states what is visible in it as *facts* ("three white planes" + "parked in the lower
right"); `write_captions` turns them into varied sentences, so every stated detail can be checked
in the picture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product
from typing import Sequence

import numpy as np

CAPTIONS_PER_IMAGE = 5

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
SIDES = {"left": _REGIONS[1][0], "right": _REGIONS[1][2], "top": _REGIONS[0][1], "bottom": _REGIONS[2][1]}
OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}

# Orientation name -> (angle, adjective, ways to say "running ...").
ORIENT = {
    "horizontal": (0.0, "horizontal", ("horizontally", "from left to right")),
    "vertical": (np.pi / 2, "vertical", ("vertically", "from top to bottom")),
    "falling": (np.pi / 4, "diagonal", ("diagonally from the upper left to the lower right",
                                        "from the top left to the bottom right")),
    "rising": (-np.pi / 4, "diagonal", ("diagonally from the lower left to the upper right",
                                        "from the bottom left to the top right")),
}


def pick(rng: np.random.Generator, options: Sequence):
    """One of `options`, at random (words, colours, layouts)."""
    return options[int(rng.integers(len(options)))]


def orient(rng: np.random.Generator, names: Sequence[str] = tuple(ORIENT)):
    """A random orientation: (name, angle, adjective, running phrases)."""
    name = pick(rng, names)
    return (name, *ORIENT[name])


def article(phrase: str) -> str:
    return "an" if phrase[0] in "aeiou" else "a"


def pluralize(noun: str) -> str:
    head, _, last = noun.rpartition(" ")
    if last.endswith("y") and last[-2] not in "aeiou":
        last = last[:-1] + "ies"
    elif last.endswith(("s", "sh", "ch", "x")):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}".strip()


def number(n: int) -> str:
    """'three', or above twelve 'about twenty-five' (rounded to five)."""
    if n < len(_NUMBERS):
        return _NUMBERS[n]
    r = 5 * round(n / 5)
    if r >= 100:
        return f"about {r}"
    return "about " + ("fifteen" if r == 15 else _TENS[r // 10] + ("-five" if r % 10 else ""))


def heads(n: int, noun: str, adjectives: Sequence[str] = ("",)) -> list[str]:
    """Noun phrases for n things: heads(3, "plane", ["white", ""]) -> three white planes, three planes."""
    out = []
    for adj in adjectives:
        body = f"{adj} {noun if n == 1 else pluralize(noun)}".strip()
        out.append(f"{article(body)} {body}" if n == 1 else f"{number(n)} {body}")
        if n > 12:
            out.append(f"many {body}")
    return out


def where(x: float, y: float) -> tuple[str, str]:
    """Ways to name the region of the 3 x 3 grid that (x, y) falls in."""
    return _REGIONS[min(max(int(y * 3), 0), 2)][min(max(int(x * 3), 0), 2)]


def where_all(points: Sequence[tuple[float, float]]) -> list[str]:
    """Ways to name where several things are: one region, or a list of regions."""
    names = list(dict.fromkeys(where(x, y) for x, y in points))
    if len(names) == 1:
        return list(names[0])
    return [_join([n[k] for n in names]) for k in (0, 1)]


def where_centre(points: Sequence[tuple[float, float]]) -> tuple[str, str]:
    """Ways to name the region of a group of things (that of their centroid)."""
    return where(*np.mean(points, axis=0))


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def at(places: Sequence[str], *verbs: str) -> list[str]:
    """Predicates for a position: 'in the upper left', 'parked in the upper left', ..."""
    return [f"{verb} {p}".strip() for verb in ("",) + verbs for p in places]


def running(runs: Sequence[str], suffix: str = "") -> list[str]:
    """'running horizontally', ... Used with heads that do not name the orientation already."""
    return [f"running {r}{suffix}" for r in runs]


@dataclass
class Fact:
    """One visible detail as (noun phrase, predicate) variants, e.g. ("three white planes",
    "parked in the lower right"); predicates read both after the noun and after "is"/"are"."""
    variants: list[tuple[str, str]]
    plural: bool

    def __add__(self, other: Fact) -> Fact:
        return Fact(self.variants + other.variants, self.plural)


def fact(phrases: Sequence[str], preds: Sequence[str], plural: bool = True) -> Fact:
    """Every noun phrase with every predicate."""
    return Fact(list(product(phrases, preds)), plural)


def count_fact(n: int, noun: str, adjectives: Sequence[str], preds: Sequence[str]) -> Fact:
    """n things, with and without their adjectives, and where they are ('no trees ...' when n is 0)."""
    return fact(heads(n, noun, adjectives if n else ("",)), preds, plural=n != 1)


# Caption templates with one fact (np: noun phrase + predicate, cl: clause) or two (np2, cl2).
_ONE = ("{a_scene} with {np}", "{cl} in {this_scene}", "in {this_scene}, {cl}",
        "there {be} {np} in {a_scene}", "this is {a_scene} where {cl}", "we can see {np} in {this_scene}",
        "{np} in {a_scene}")
_TWO = ("{a_scene} with {np} and {np2}", "{cl} and {cl2} in {this_scene}", "in {this_scene}, {cl} and {cl2}",
        "{np} and {np2} can be seen in {a_scene}", "this is {a_scene} where {cl}, and {cl2}",
        "{a_scene} with {np}, where {cl2}")


def write_captions(nouns: Sequence[str], facts: list[Fact], rng: np.random.Generator) -> list[str]:
    """CAPTIONS_PER_IMAGE distinct captions, each stating one or two of the facts."""
    weights = np.array([2.0] + [1.0] * (len(facts) - 1))  # the first fact is the defining one
    out: list[str] = []
    for _ in range(500):
        k = 2 if len(facts) > 1 and rng.random() < 0.55 else 1
        # k facts drawn by weight without replacement (largest random keys u ** (1 / weight))
        chosen = np.argsort(-rng.random(len(facts)) ** (1 / weights))[:k]
        scene = pick(rng, nouns)
        fields = {"a_scene": f"{article(scene)} {scene}", "this_scene": f"{pick(rng, ('this', 'the'))} {scene}"}
        for suffix, i in zip(("", "2"), chosen):
            head, pred = pick(rng, facts[i].variants)
            be = "are" if facts[i].plural else "is"
            fields |= {f"np{suffix}": f"{head} {pred}", f"cl{suffix}": f"{head} {be} {pred}", f"be{suffix}": be}
        caption = pick(rng, _TWO if k == 2 else _ONE).format(**fields) + "."
        if caption not in out:
            out.append(caption)
            if len(out) == CAPTIONS_PER_IMAGE:
                return out
    raise RuntimeError(f"synth: scene '{nouns[0]}' has too few facts for {CAPTIONS_PER_IMAGE} distinct captions")


def could_write(caption: str, facts: list[Fact], nouns: Sequence[str]) -> bool:
    """Whether `write_captions(nouns, facts, ...)` could have written `caption`: its inverse, used to tell
    whether a caption moved from another image is nonetheless true of this one.

    Each template becomes a regular expression whose fields may only take the strings these facts and
    nouns give, so the match itself checks every stated detail; two-fact captions must state two facts.
    """
    phrases: dict[str, set[int]] = {}
    clauses: dict[str, set[int]] = {}
    for i, f in enumerate(facts):
        be = "are" if f.plural else "is"
        for head, pred in f.variants:
            phrases.setdefault(f"{head} {pred}", set()).add(i)
            clauses.setdefault(f"{head} {be} {pred}", set()).add(i)
    allowed = {"a_scene": [f"{article(n)} {n}" for n in nouns],
               "this_scene": [f"{w} {n}" for w in ("this", "the") for n in nouns],
               "be": ["is", "are"], "np": phrases, "np2": phrases, "cl": clauses, "cl2": clauses}
    text = caption.strip().removesuffix(".")
    for template in _ONE + _TWO:
        pattern = re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m[1]}>" + "|".join(
            re.escape(s) for s in sorted(allowed[m[1]], key=len, reverse=True)) + ")", re.escape(template))
        match = re.fullmatch(pattern, text)
        if match is None:
            continue
        fields = match.groupdict()
        stated = [phrases.get(fields.get(k) or "", set()) | clauses.get(fields.get(c) or "", set())
                  for k, c in (("np", "cl"), ("np2", "cl2"))]
        if not stated[1] or len(stated[0] | stated[1]) > 1:  # one fact, or two different ones
            return True
    return False
