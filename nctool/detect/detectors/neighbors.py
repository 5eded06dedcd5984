"""The `neighbors` detector (agreement of each pair with its nearest neighbours, LEMoN-like) and its
neighbour search: exact in torch, or through a faiss index (`faiss_index`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nctool.detect.detectors.base import (
    CHUNK_ELEMENTS,
    Evidence,
    Option,
    _CosineScoreDetector,
    _standardized,
    register,
)
from nctool.errors import NctoolError

if TYPE_CHECKING:
    import torch

NEIGHBOR_INDEXES = ("exact", "faiss")  # the neighbour search of `neighbors` (NeighborsDetector)
FLAT_UP_TO = 50_000       # keys; a larger faiss index is approximate (IVF)
IVF_PROBE_SHARE = 1 / 16  # of the IVF lists searched per query


@register
class NeighborsDetector(_CosineScoreDetector):
    """Training-free consensus of a pair (x_i, t_i) with its neighbours (in the spirit of LEMoN).

        c_i = x_i . t_i                                  the direct cosine
        a_i = mean over the k images u nearest to x_i of  mean caption of u . t_i
              (do the captions of look-alike images say what t_i says?)
        b_i = mean over the k captions t_j nearest to t_i of  x_j . x_i
              (do the images of look-alike captions look like x_i?)
        s_i = mean(c) + std(c) * (z(c)_i + z(a)_i + z(b)_i) / 3

    k is the `neighbors` option. z standardises a term over the scored pairs (mean 0, std 1): the
    three cosines live on very different scales (caption-caption and image-image cosines are high
    and, for a weak model, widely spread), so a plain average lets the widest one decide. s puts the
    equal-weight vote back on the direct cosine's scale, so `threshold` reads as a cosine. No weight
    is tuned on labels. Neighbours never share the pair's image_id, so a pair's own image and
    sibling captions do not vote. Images are searched once per image_id (the mean caption of an
    image averages its rows), captions per pair; k shrinks to the number of candidates when fewer
    exist. Evidence: `similarity` (c), `caption_agreement` (a), `image_agreement` (b).

    A decoy (x_i, t_p), t_p the caption of pair p of another image, is scored in the data's context:
    a = the mean caption of x_i's neighbour images . t_p, b = the mean image of t_p's neighbour
    captions (those of pair p, found outside p's image) . x_i, standardised with the pairs' means
    and spreads. Its caption is in the data, so its own pair p is left out of its neighbours, as a
    pair's own image is left out of its.

    The search (`neighbor_index`), over M keys (M = images, then M = N captions) of dimension D:
    - `exact` (default): torch on the scoring device, N x M dot products in chunks of
      CHUNK_ELEMENTS similarities; holds nothing beyond the embeddings and one chunk.
    - `faiss` (`pip install 'nctool[faiss]'`, CPU): an inner-product index over the keys (the
      embeddings are L2-normalised, so inner product is cosine), searched for the k + m best
      keys (m = most keys one image holds), same-image keys dropped. Up to FLAT_UP_TO keys it is
      exact (IndexFlatIP: the same neighbours as `exact` up to float rounding of near-ties; it
      holds a copy of the keys, M x D x 4 B, e.g. 100,000 x 512 x 4 B = 205 MB). Above, an
      approximate IVF index (IVF{L},Flat, inner product): L = min(4 sqrt(M), M / 39) lists from a
      k-means seeded by the run's seed (deterministic for a given seed and data), IVF_PROBE_SHARE
      of the lists probed per query, so about that share of the dot products; it holds the keys
      (M x D x 4 B), their ids (M x 8 B) and the L x D x 4 B centroids. A query for which the
      probed lists hold fewer than k keys of other images is searched exactly.
    Both also hold the N x k neighbour ids and N x k x D gathered values of one chunk at a time.
    """

    name = "neighbors"
    description = "training-free agreement of each pair with its nearest neighbours (LEMoN-like)"
    needs = frozenset({"embeddings"})
    options = _CosineScoreDetector.options + (
        Option("neighbors", int, 10, "how many neighbours vote"),
        Option("neighbor_index", str, "exact", f"the neighbour search: {' or '.join(NEIGHBOR_INDEXES)} (faiss-cpu, "
                                               f"the faiss extra; approximate above {FLAT_UP_TO:,} keys)"))
    neighbors: int
    neighbor_index: str

    def check(self) -> None:
        super().check()
        if self.neighbors < 1:
            raise NctoolError(f"neighbors {self.neighbors}: give at least 1 neighbour")
        if self.neighbor_index not in NEIGHBOR_INDEXES:
            raise NctoolError(f"neighbor index '{self.neighbor_index}': unknown; "
                              f"choose {' or '.join(NEIGHBOR_INDEXES)}")
        if self.neighbor_index == "faiss":
            _import_faiss()

    def score(self, evidence: Evidence) -> tuple[np.ndarray, dict, np.ndarray | None]:
        import torch

        images, texts = evidence.image_global.float(), evidence.text_global.float()
        codes, image_ids = pd.factorize(evidence.image_id)
        if len(image_ids) < 2:
            raise NctoolError("neighbors: all scored pairs share one image; the detector needs at least 2 images")
        first_rows = torch.from_numpy(np.unique(codes, return_index=True)[1]).to(images.device)
        codes = torch.from_numpy(codes).to(images.device)
        mean_caption = torch.zeros(len(image_ids), texts.shape[1], device=texts.device).index_add_(0, codes, texts)
        mean_caption /= torch.bincount(codes)[:, None]
        image_codes = torch.arange(len(image_ids), device=images.device)
        search = {"exact": _ExactSearch, "faiss": _FaissSearch}[self.neighbor_index]
        neighbour_captions = _neighbour_mean(search(images[first_rows], image_codes, evidence.seed), images, codes,
                                             mean_caption, self.neighbors)
        neighbour_images = _neighbour_mean(search(texts, codes, evidence.seed), texts, codes, images, self.neighbors)
        caption_agreement = (neighbour_captions * texts).sum(1).double().cpu().numpy()
        image_agreement = (neighbour_images * images).sum(1).double().cpu().numpy()
        cosine = np.asarray(evidence.similarity, dtype=float)
        votes = (_standardized(cosine) + _standardized(caption_agreement) + _standardized(image_agreement)) / 3
        score = cosine.mean() + cosine.std() * votes
        decoys = None
        if evidence.decoy_caption is not None:
            partner = torch.from_numpy(evidence.decoy_caption).to(texts.device)
            decoy_votes = (_standardized(evidence.decoy_similarity, cosine)
                           + _standardized((neighbour_captions * texts[partner]).sum(1).double().cpu().numpy(),
                                           caption_agreement)
                           + _standardized((neighbour_images[partner] * images).sum(1).double().cpu().numpy(),
                                           image_agreement)) / 3
            decoys = cosine.mean() + cosine.std() * decoy_votes
        return score, {"similarity": cosine, "caption_agreement": caption_agreement,
                       "image_agreement": image_agreement}, decoys


def _neighbour_mean(search: "_ExactSearch", queries: torch.Tensor, query_image: torch.Tensor,
                    values: torch.Tensor, k: int) -> torch.Tensor:
    """For each query i: the mean over its k nearest keys j (largest queries_i . keys_j, among keys of
    an image other than query i's, found by `search`) of values_j, [queries, D]. k shrinks to the
    fewest candidates any query has."""
    import torch

    k = min(k, len(search.keys) - search.most_per_image)
    step = max(1, CHUNK_ELEMENTS // max(search.elements_per_query(k), k * queries.shape[1]))
    out = []
    for start in range(0, len(queries), step):
        rows = slice(start, start + step)
        nearest = search(queries[rows], query_image[rows], k)
        out.append(values[nearest].mean(1))
    return torch.cat(out)


class _ExactSearch:
    """The k keys with the largest inner product with each query, keys of the query's image left out.

    Exact, in torch on the keys' device (`seed` is unused: nothing is drawn).
    """

    def __init__(self, keys: torch.Tensor, key_image: torch.Tensor, seed: int = 0):
        import torch

        self.keys, self.key_image = keys, key_image
        self.most_per_image = int(torch.bincount(key_image).max())

    def elements_per_query(self, k: int) -> int:
        """Entries a search holds per query (a row of similarities)."""
        return len(self.keys)

    def __call__(self, queries: torch.Tensor, query_image: torch.Tensor, k: int) -> torch.Tensor:
        """[len(queries), k] key rows, nearest first."""
        sims = queries @ self.keys.T
        sims.masked_fill_(query_image[:, None] == self.key_image[None, :], -math.inf)
        return sims.topk(k, dim=1).indices


class _FaissSearch(_ExactSearch):
    """As _ExactSearch, through a faiss inner-product index (NeighborsDetector: which index, its memory).

    The index returns the k + most_per_image best keys, enough to leave k after dropping the
    query's own image; a query left with fewer (an IVF probe that found too few keys) is searched
    exactly.
    """

    def __init__(self, keys: torch.Tensor, key_image: torch.Tensor, seed: int = 0):
        super().__init__(keys, key_image)
        self.index = faiss_index(keys.detach().float().cpu().numpy(), seed)

    def elements_per_query(self, k: int) -> int:
        """The hits a search returns per query (faiss holds no row of similarities)."""
        return min(len(self.keys), k + self.most_per_image)

    def __call__(self, queries: torch.Tensor, query_image: torch.Tensor, k: int) -> torch.Tensor:
        import torch

        wanted = self.elements_per_query(k)
        _, hits = self.index.search(np.ascontiguousarray(queries.detach().float().cpu().numpy()), wanted)
        hits = torch.from_numpy(hits).to(queries.device)
        other = (hits >= 0) & (self.key_image[hits.clamp(min=0)] != query_image[:, None])
        # the first k hits of another image, in the index's order (nearest first)
        order = torch.sort((~other).to(torch.int8), dim=1, stable=True).indices[:, :k]
        nearest = hits.gather(1, order)
        short = other.sum(1) < k
        if short.any():
            nearest[short] = super().__call__(queries[short], query_image[short], k)
        return nearest


def faiss_index(keys: np.ndarray, seed: int = 0):
    """A faiss inner-product index holding `keys` [M, D] float32: exact (IndexFlatIP) up to FLAT_UP_TO
    rows, else IVF{L},Flat with L = min(4 sqrt(M), M / 39) lists (k-means seeded by `seed`) and
    IVF_PROBE_SHARE of them probed per query. Needs the `faiss` extra."""
    faiss = _import_faiss()
    rows, dim = keys.shape
    if rows <= FLAT_UP_TO:
        index = faiss.IndexFlatIP(dim)
    else:
        # 39 training points per list is faiss's own minimum for a sound k-means
        lists = max(1, min(round(4 * math.sqrt(rows)), rows // 39))
        index = faiss.index_factory(dim, f"IVF{lists},Flat", faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(keys)
        index.nprobe = max(1, round(lists * IVF_PROBE_SHARE))
    index.add(keys)
    return index


def _import_faiss():
    """The faiss module, or a one-line NctoolError that says how to install it."""
    try:
        import faiss
    except ImportError:
        raise NctoolError("neighbor index 'faiss': faiss is not installed; pip install 'nctool[faiss]' "
                          "(or use --neighbor-index exact)") from None
    return faiss
