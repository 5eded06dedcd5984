"""Suggested fixes on tiny hand-made embeddings whose dot products are exact in float32."""

import numpy as np
import pytest
import torch

from nctool.data.words import ImageWords
from nctool.detect.detectors import Evidence
from nctool.detect.suggest import SUGGESTION_COLUMNS, suggestions, top_matches
from nctool.errors import NctoolError

E1, E2, E3 = torch.eye(4)[:3]
HALF = torch.tensor([0.5, 0.5, 0.5, 0.5])


def vectors(*rows):
    return torch.stack([torch.as_tensor(row, dtype=torch.float32) for row in rows])


# keys 1, 2 and 4 are level at 0.5 with E1; key 0 is in the first query's group
KEYS = vectors(E1, HALF, [0.5, -0.5, 0.5, 0.5], E2, [0.5, 0.5, -0.5, 0.5])
KEY_GROUPS = torch.tensor([0, 1, 2, 1, 2])
QUERIES, QUERY_GROUPS = vectors(E1, E2), torch.tensor([0, 1])


@pytest.mark.parametrize("chunk_elements", [1, 5, 10_000])
def test_top_matches_skip_the_own_group_and_break_ties_by_position(chunk_elements):
    positions, scores = top_matches(QUERIES, QUERY_GROUPS, KEYS, KEY_GROUPS, k=2, chunk_elements=chunk_elements)
    assert positions.tolist() == [[1, 2], [4, 0]]
    assert scores.tolist() == [[0.5, 0.5], [0.5, 0.0]] and scores.dtype == np.float64
    # the second query has 3 candidates (keys 0, 2, 4): k shrinks to 3
    positions, scores = top_matches(QUERIES, QUERY_GROUPS, KEYS, KEY_GROUPS, k=5, chunk_elements=chunk_elements)
    assert positions.tolist() == [[1, 2, 4], [4, 0, 2]]
    assert scores.tolist() == [[0.5, 0.5, 0.5], [0.5, 0.0, -0.5]]


def test_top_matches_of_no_query_and_of_no_candidate():
    positions, scores = top_matches(QUERIES[:0], QUERY_GROUPS[:0], KEYS, KEY_GROUPS, k=3)
    assert positions.shape == (0, 3) and scores.shape == (0, 3)
    with pytest.raises(NctoolError, match="suggest: every candidate shares the flagged pair's image; suggestions "
                                          "need at least 2 images"):
        top_matches(QUERIES[:1], QUERY_GROUPS[:1], KEYS[:1], KEY_GROUPS[:1], k=3)


def evidence():
    """Images a = E1, b = E2, c = E3; a#1 and b#1 swapped captions (a#1 speaks of b, b#1 of a)."""
    image_id = np.array(["a", "a", "b", "b", "c"])
    texts = vectors(HALF, E2, [0.5, 0.5, -0.5, 0.5], E1, [0.5, -0.5, 0.5, 0.5])
    images = vectors(E1, E1, E2, E2, E3)
    return Evidence(np.array(["a#0", "a#1", "b#0", "b#1", "c#0"]), image_id, np.zeros(5), image_global=images,
                    text_global=texts)


CAPTIONS = ["all of it", "about b", "mostly b", "about a", "about c"]


def test_suggestions_of_the_flagged_pairs():
    fixes = suggestions(evidence(), CAPTIONS, np.array([False, True, False, False, True]), k=2, chunk_elements=3)
    assert list(fixes.columns) == ["pair_id", *SUGGESTION_COLUMNS]
    a1, c0 = fixes.to_dict("records")
    # a#1 (image a = E1): captions of b and c score b#1 1, b#0 0.5, c#0 0.5; its caption E2 matches b, then c
    assert a1 == {"pair_id": "a#1", "suggested_pair_ids": ["b#1", "b#0"], "suggested_captions": ["about a", "mostly b"],
                  "suggested_caption_scores": [1.0, 0.5], "suggested_image_ids": ["b", "c"],
                  "suggested_image_scores": [1.0, 0.0]}
    # c#0 (image E3): a#0 0.5, then a#1 and b#1 level at 0: a#1 first by pair_id
    assert c0 == {"pair_id": "c#0", "suggested_pair_ids": ["a#0", "a#1"],
                  "suggested_captions": ["all of it", "about b"], "suggested_caption_scores": [0.5, 0.0],
                  "suggested_image_ids": ["a", "b"], "suggested_image_scores": [0.5, -0.5]}


def test_suggestions_shrink_to_the_candidates_and_none_flagged_gives_no_rows():
    fixes = suggestions(evidence(), CAPTIONS, np.array([False, True, False, False, False]), k=9)
    [a1] = fixes.to_dict("records")
    assert a1["suggested_pair_ids"] == ["b#1", "b#0", "c#0"] and a1["suggested_caption_scores"] == [1.0, 0.5, 0.5]
    assert a1["suggested_image_ids"] == ["b", "c"]  # every image but a
    assert suggestions(evidence(), CAPTIONS, np.zeros(5, dtype=bool), k=2).empty


def test_a_caption_that_names_the_image_details_moves_up():
    # a#1 (image a) gets candidates b#1 (cosine 1), b#0 (0.5), c#0 (0.5); image a's captions use two, white, one,
    # red: c#0 {two, white} support 1, b#1 {four, red} 1/2, b#0 {two, red, blue} 2/3
    captions = ["two white planes", "a red one", "two red blue planes", "four red planes", "two white planes here"]
    fixes = suggestions(evidence(), captions, np.array([False, True, False, False, False]), k=3)
    [a1] = fixes.to_dict("records")
    # z(cosine) over (1, .5, .5): (1.414, -.707, -.707); z(support) over (1/2, 2/3, 1): (-1.069, -0.267, 1.336)
    # sums: b#1 0.345, b#0 -0.974, c#0 0.629
    assert a1["suggested_pair_ids"] == ["c#0", "b#1", "b#0"]
    assert a1["suggested_caption_scores"] == [0.5, 1.0, 0.5]  # still each candidate's cosine


def test_the_tagger_reading_of_the_flagged_image_votes_too():
    # as above, and a tagger reads four and red in image a, not two and white: b#1 {four, red} log(1.8), b#0
    # {two, red, blue} (log .2 + log 1.8 + 0) / 3, c#0 {two, white} log(.2); z: (1.157, 0.125, -1.283). Sums with
    # the cosine and sibling votes above: b#1 1.502, b#0 -0.849, c#0 -0.654
    captions = ["two white planes", "a red one", "two red blue planes", "four red planes", "two white planes here"]
    read = np.full((5, 5), 0.5)
    read[1] = [0.1, 0.1, 0.9, 0.9, 0.5]  # pair a#1's image
    seen = evidence()
    seen.image_words = ImageWords(("two", "white", "four", "red", "blue"), np.full((5, 5), 0.5), read)
    [a1] = suggestions(seen, captions, np.array([False, True, False, False, False]), k=3).to_dict("records")
    assert a1["suggested_pair_ids"] == ["b#1", "c#0", "b#0"]
