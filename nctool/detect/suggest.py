"""Suggested fixes for flagged pairs (`nctool score --suggest K`).

For a flagged pair (x_i, t_i) of image I, among the scored pairs and by the model's global cosine:
- the K captions t_j that best match x_i, over the rows whose image is not I (captions already on
  I are what the curator sees anyway), chosen among the RERANK_POOL best by cosine and ordered by
  the cosine and the attribute support together: z(cosine) + z(support) over those candidates, the
  support being the share of the candidate's attribute words (nctool.detect.detectors.attributes)
  that the captions of I use. A caption written for I names its counts, colours and places, which
  I's other captions repeat; a caption of a similar image does not. On the demo this raised a
  noisy pair's repair at top-1 from 2.4 to 6.2 % (benchmarks/README.md). With a word tagger
  (`score --tagger`, Evidence.image_words) a third vote reads the candidate's words in I itself;
- the K images (one per image_id) that best match t_i, other than I.

The search is exact (torch.topk) and runs on the device the embeddings are on, a chunk of queries
at a time, so that it never holds more than `chunk_elements` similarities (nctool.detect.detectors'
CHUNK_ELEMENTS by default). Ties are broken by position among the candidates: captions in the
order of the Evidence (sorted by pair_id), images sorted by image_id.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from nctool.data.words import ImageWords, attribute_sets
from nctool.detect.detectors import CHUNK_ELEMENTS, Evidence
from nctool.detect.detectors.attributes import image_members
from nctool.detect.detectors.base import _standardized
from nctool.errors import NctoolError

RERANK_POOL = 50
"""Captions (at least K) the cosine search hands to the attribute re-ranking, per flagged pair."""

SUGGESTION_COLUMNS = ("suggested_pair_ids", "suggested_captions", "suggested_caption_scores",
                      "suggested_image_ids", "suggested_image_scores")


def top_matches(queries: torch.Tensor, query_groups: torch.Tensor, keys: torch.Tensor, key_groups: torch.Tensor, *,
                k: int, chunk_elements: int = CHUNK_ELEMENTS) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the k keys of another group with the largest dot product, best first.

    Parameters
    ----------
    queries
        [Q, D] query vectors.
    query_groups
        [Q] integer group of each query (same coding as `key_groups`, same device).
    keys
        [N, D] candidate vectors, on the device of `queries`.
    key_groups
        [N] integer group of each key; keys of the query's own group are never returned.
    k
        How many keys per query; shrinks to the fewest candidates any query has.
    chunk_elements
        Most similarities held at a time (at least one query's row).

    Returns
    -------
    tuple of numpy arrays
        Key positions [Q, k] (int64) and their dot products [Q, k] (float64), best first; among
        equal dot products the lower position comes first.
    """
    if len(queries) == 0:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k))
    counts = torch.bincount(key_groups, minlength=int(query_groups.max()) + 1)
    k = min(k, len(keys) - int(counts[query_groups].max()))
    if k < 1:
        raise NctoolError("suggest: every candidate shares the flagged pair's image; suggestions need at least "
                          "2 images among the scored pairs")
    keys, step = keys.float(), max(1, chunk_elements // len(keys))
    positions, scores = [], []
    for start in range(0, len(queries), step):
        sims = queries[start:start + step].float() @ keys.T
        sims.masked_fill_(query_groups[start:start + step, None] == key_groups[None, :], -torch.inf)
        top = sims.topk(k, dim=1)
        tied = int((sims >= top.values[:, -1:]).sum(1).max())  # keys level with the k-th: rank them all
        if tied > k:
            top = sims.topk(tied, dim=1)
        by_position, perm = top.indices.sort(dim=1)
        values = top.values.gather(1, perm)
        order = values.argsort(dim=1, descending=True, stable=True)[:, :k]
        positions.append(by_position.gather(1, order).cpu())
        scores.append(values.gather(1, order).cpu())
    return torch.cat(positions).numpy(), torch.cat(scores).double().numpy()


def suggestions(evidence: Evidence, captions: Sequence[str], flagged: np.ndarray, *, k: int,
                chunk_elements: int = CHUNK_ELEMENTS) -> pd.DataFrame:
    """Suggested captions and images for the flagged pairs (see the module docstring).

    Parameters
    ----------
    evidence
        The scored pairs, with `image_global` and `text_global` (L2-normalised, one row per pair).
    captions
        Each pair's caption, in the order of `evidence.pair_id`.
    flagged
        [N] bool: the pairs that get suggestions.
    k
        Suggestions of each kind per pair (fewer when fewer candidates exist, see `top_matches`).
    chunk_elements
        Most similarities held at a time.

    Returns
    -------
    pandas.DataFrame
        One row per flagged pair, in evidence order: `pair_id` and the SUGGESTION_COLUMNS (lists,
        best first).
    """
    codes, image_ids = pd.factorize(evidence.image_id, sort=True)
    images, texts = evidence.image_global, evidence.text_global
    groups = torch.from_numpy(codes).to(images.device)
    flagged = np.asarray(flagged, dtype=bool)
    rows = torch.from_numpy(np.flatnonzero(flagged)).to(images.device)
    first_rows = torch.from_numpy(np.unique(codes, return_index=True)[1]).to(images.device)
    caption_rows, caption_scores = top_matches(images[rows], groups[rows], texts, groups, k=max(k, RERANK_POOL),
                                               chunk_elements=chunk_elements)
    caption_rows, caption_scores = _reranked(caption_rows, caption_scores, codes, np.flatnonzero(flagged),
                                             attribute_sets(captions), k, evidence.image_words)
    image_rows, image_scores = top_matches(texts[rows], groups[rows], images[first_rows],
                                           torch.arange(len(image_ids), device=images.device), k=k,
                                           chunk_elements=chunk_elements)
    pair_ids, captions, image_ids = (np.asarray(evidence.pair_id), np.asarray(captions, dtype=object),
                                     np.asarray(image_ids))
    return pd.DataFrame({"pair_id": pair_ids[flagged],
                         "suggested_pair_ids": [pair_ids[r].tolist() for r in caption_rows],
                         "suggested_captions": [captions[r].tolist() for r in caption_rows],
                         "suggested_caption_scores": caption_scores.tolist(),
                         "suggested_image_ids": [image_ids[r].tolist() for r in image_rows],
                         "suggested_image_scores": image_scores.tolist()})


def _reranked(rows: np.ndarray, cosines: np.ndarray, codes: np.ndarray, queries: np.ndarray,
              words: list[frozenset[str]], k: int, image_words: ImageWords | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Each query's candidate captions (rows [Q, M], best cosine first) reordered by z(cosine) + z(support)
    (+ z(tagger support) with `image_words`) over its M candidates, the first k kept. support: the share of
    a candidate's attribute words that the captions of the query's image use; tagger support: how much
    likelier the tagger finds them in the query's image than in its kind of scene (ImageWords.support).
    Where a candidate has no such words it gets the candidates' mean; a vote that does not vary over the
    candidates adds nothing, so a query without any keeps the cosine order."""
    members = image_members(codes)
    order = np.empty((len(queries), min(k, rows.shape[1])), dtype=np.int64)
    for q, query in enumerate(queries):
        seen = frozenset().union(*(words[j] for j in members[codes[query]]))
        candidates = [words[c] for c in rows[q]]
        votes = [np.array([len(own & seen) / len(own) if own else np.nan for own in candidates])]
        if image_words is not None:
            votes.append(image_words.support(candidates, np.full(len(candidates), query)))
        combined = _standardized(cosines[q])
        for vote in votes:
            defined = ~np.isnan(vote)
            if defined.any():
                combined = combined + _standardized(np.where(defined, vote, vote[defined].mean()))
        order[q] = np.argsort(-combined, kind="stable")[:order.shape[1]]
    picked = np.arange(len(queries))[:, None]
    return rows[picked, order], cosines[picked, order]
