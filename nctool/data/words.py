"""The words that carry a caption's fine detail (counts, colours, places, orientations), and how they are
read: from a caption (`attribute_sets`), from an image's captions (`word_shares`, a tagger's targets)
and from a tagger's reading of the image (`ImageWords`, the evidence of the `attributes` detector).

Numpy only: the detector registry imports this to build `nctool score --help`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

ATTRIBUTE_WORDS = frozenset((
    # counts
    "no one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred "
    "many several few single some lots dozens numerous pair couple "
    # colours and tones
    "white red blue green yellow gray grey black brown orange purple pink dark light bright colorful colourful "
    # places in the picture
    "left right top bottom upper lower middle center centre corner side edge "
    # orientation and shape
    "horizontal horizontally vertical vertically diagonal diagonally parallel curved straight round square "
    "rectangular circular long short wide narrow large small big tiny huge"
).split())
"""The words that carry the detail a caption of another image of the same scene class gets wrong
(English; the one list the tagger learns and the `attributes` detector reads)."""

_WORD = re.compile(r"[a-z]+")


def attribute_sets(captions) -> list[frozenset[str]]:
    """The ATTRIBUTE_WORDS of each caption (lower-cased whole words)."""
    return [frozenset(word for word in _WORD.findall(str(caption).lower()) if word in ATTRIBUTE_WORDS)
            for caption in captions]


def word_shares(captions: Sequence[str], image_codes: np.ndarray, vocab: Sequence[str]) -> np.ndarray:
    """[images, words]: per image code (0 .. n-1), the share of its captions that use each vocabulary word
    (the tagger's targets)."""
    column = {word: k for k, word in enumerate(vocab)}
    counts = np.zeros((int(image_codes.max()) + 1, len(vocab)), np.float32)
    for code, words in zip(image_codes, attribute_sets(captions)):
        for word in words & column.keys():
            counts[code, column[word]] += 1
    return counts / np.bincount(image_codes)[:, None]


@dataclass
class ImageWords:
    """The tagger's reading of each scored pair's image: the chance that a caption of it uses each word."""

    vocab: tuple[str, ...]
    reference: np.ndarray    # [pairs, words] the chance in a reference image (its kind of scene, or any)
    probability: np.ndarray  # [pairs, words]

    def support(self, words: list[frozenset[str]], pairs: np.ndarray | None = None) -> np.ndarray:
        """Per entry i: the mean over the vocabulary words in `words[i]` of log(probability / reference) in the
        image of pair `pairs[i]` (default: pair i), how much likelier the tagger finds them in that image than
        in the reference (NaN without such words).

        So a decoy's words go with its pair's image, and a suggested caption's with the flagged pair's.
        """
        pairs = np.arange(len(words)) if pairs is None else np.asarray(pairs)
        column = {word: k for k, word in enumerate(self.vocab)}
        floor = 1e-4  # a word the tagger rules out counts as unlikely, not as minus infinity
        support = np.full(len(words), np.nan)
        for i, own in enumerate(words):
            known = [column[word] for word in own if word in column]
            if known:
                read, reference = self.probability[pairs[i], known], self.reference[pairs[i], known]
                support[i] = np.mean(np.log(np.clip(read, floor, 1)) - np.log(np.clip(reference, floor, 1)))
        return support
