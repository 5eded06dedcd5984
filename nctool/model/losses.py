"""RRSITR training losses as pure functions of a batch's similarity matrices.

Convention for every matrix here: ``M[i, j]`` compares image ``i`` with text ``j``, and the
matched pairs sit on the diagonal. Row ``i`` is the image -> text direction of pair ``i``,
column ``i`` its text -> image direction. Losses are computed in float32 whatever the input
dtype (bf16/fp16 under autocast), and nothing loops over the batch in Python.
"""

import math

import torch
import torch.nn.functional as F

from nctool.errors import NctoolError
from nctool.schema import LABELS

CLEAN, AMBIGUOUS, NOISY = range(3)  # split codes: indexes into nctool.schema.LABELS

REFERENCE_TERMS = 4
"""The reference loss sums four cross-entropy terms; the default thresholds are for that."""


def _symmetric_ce(logits: torch.Tensor) -> torch.Tensor:
    """CE_row_i(M) + CE_col_i(M) for every pair i, in float32.

    The diagonal is subtracted before the logsumexp so that small losses keep their precision.
    """
    logits = logits.float()
    positive = logits.diagonal()
    return (logits - positive[:, None]).logsumexp(dim=1) + (logits - positive).logsumexp(dim=0)


def per_pair_loss(global_logits: torch.Tensor, local_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pair InfoNCE loss, ``[B]``.

        l_i = CE_row_i(G) + CE_col_i(G) [+ CE_row_i(Lc) + CE_col_i(Lc)]
        CE_row_i(M) = logsumexp_j M[i, j] - M[i, i],  CE_col_i(M) = logsumexp_j M[j, i] - M[i, i]

    ``global_logits`` G is already scaled by the caller (G = 20 * cosine in the reference);
    ``local_logits`` Lc likewise (s * ||C||_F with s ~ 20). Without ``local_logits`` only the
    two global terms are summed.
    """
    loss = _symmetric_ce(global_logits)
    if local_logits is not None:
        loss = loss + _symmetric_ce(local_logits)
    return loss


def chance_loss(batch_size: int, terms: int = REFERENCE_TERMS) -> float:
    """Per-pair loss when all logits are equal: ``terms * ln(B)`` (4 ln 100 ~ 18.42)."""
    return terms * math.log(batch_size)


def thresholds_for_batch(
    batch_size: int,
    g1: float = 5.0,
    g2: float = 18.0,
    reference_batch: int = 100,
    terms: int = REFERENCE_TERMS,
) -> tuple[float, float]:
    """Split thresholds for another batch size or number of loss terms.

    ``g1``, ``g2`` are the reference thresholds, set for the four-term loss at
    ``reference_batch``. They are kept as fixed fractions of the chance loss:

        g_B = g * chance_loss(B, terms) / chance_loss(reference_batch, 4)

    so B = 100 with four terms gives exactly (5, 18), and the two global terms alone halve them.
    """
    if batch_size < 2:
        raise NctoolError(f"batch size {batch_size}: the split needs at least 2 pairs per batch; use a larger batch")
    ratio = chance_loss(batch_size, terms) / chance_loss(reference_batch)
    return g1 * ratio, g2 * ratio


def recipe_thresholds(loss_cfg, batch_size: int) -> tuple[float, float]:
    """(g1, g2) for a batch size from a recipe's LossCfg (4 loss terms with the local term, else 2)."""
    return thresholds_for_batch(batch_size, loss_cfg.g1, loss_cfg.g2, loss_cfg.reference_batch,
                                terms=4 if loss_cfg.use_local else 2)


def split_by_loss(loss: torch.Tensor, g1: float, g2: float) -> torch.Tensor:
    """Three-way split codes, LongTensor ``[B]``: CLEAN if l < g1, AMBIGUOUS if g1 <= l < g2, else NOISY."""
    return (loss >= g1).long() + (loss >= g2).long()


@torch.no_grad()
def self_paced_weight(loss: torch.Tensor, g: float | torch.Tensor) -> torch.Tensor:
    """Reliability weight ``v = cos(pi * l / (2g))`` for l < g, else 0; carries no gradient.

    It is the minimiser over v in [0, 1] of ``v*l + self_paced_regulariser(v, g)``. ``g`` may be
    a tensor broadcast against ``loss`` (one threshold per pair).
    """
    loss = loss.float()
    return torch.where(loss < g, torch.cos(loss * (math.pi / (2 * g))), torch.zeros_like(loss))


def self_paced_regulariser(v: torch.Tensor, g: float | torch.Tensor) -> torch.Tensor:
    """Self-paced regulariser ``R(v; g) = -(2g/pi) * (v*arccos(v) - sqrt(1 - v^2))``, v in [0, 1]."""
    v = v.float()
    return -(2 * g / math.pi) * (v * torch.arccos(v) - torch.sqrt((1 - v * v).clamp_min(0)))


def robust_triplet(sim: torch.Tensor, m0: float = 0.6) -> torch.Tensor:
    """Robust triplet loss with the hardest negative in each direction, ``[B]``.

    On raw cosines (no temperature), with h_i2t = max_{j!=i} s_ij and h_t2i = max_{j!=i} s_ji:

        d = s_ii - h,   m = m0 * (1 + relu(-d))   (the margin keeps its gradient)
        trip_i = relu(m_i2t - s_ii + h_i2t) + relu(m_t2i - s_ii + h_t2i)
    """
    sim = sim.float()
    positive = sim.diagonal()
    negatives = sim.masked_fill(torch.eye(len(sim), dtype=torch.bool, device=sim.device), -math.inf)
    hardest = torch.stack((negatives.amax(dim=1), negatives.amax(dim=0)))
    gap = positive - hardest
    margin = m0 * (1 + F.relu(-gap))
    return F.relu(margin - gap).sum(dim=0)


def rrsitr_loss(
    global_sim: torch.Tensor,
    local_logits: torch.Tensor | None,
    g1: float,
    g2: float,
    scale: float = 20.0,
    w_ambiguous: float = 0.8,
    w_noisy: float = 0.9,
    m0: float = 0.6,
    trusted: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict]:
    """The RRSITR batch loss.

    With l = per_pair_loss(scale * global_sim, local_logits) split at g1, g2 and detached weights
    v = cos(pi*l/(2*g1)) on clean, cos(pi*l/(2*g2)) on ambiguous pairs (discontinuous at g1):

        T1_i = v_i*l_i + R(v_i; g1),   T2_i = v_i*l_i + R(v_i; g2)
        L = (1/B) * sum_i [ 1clean*T1_i + w_ambiguous*1amb*T2_i + w_noisy*1noisy*trip_i ]

    with trip = robust_triplet(global_sim, m0). ``global_sim`` holds unscaled cosines.
    ``trusted`` (bool ``[B]``, optional) marks pairs a person confirmed: they are labelled clean
    whatever their loss and cost their plain loss l_i (weight 1, no regulariser).

    Returns ``(L, details)``; details holds ``per_pair``, each pair's term of L with its gradient
    (L is their mean), and detached tensors: per pair ``loss``, ``labels``, ``weights`` (0 on
    noisy pairs); the contributions ``clean``, ``ambiguous``, ``noisy`` to L (they sum to L); and
    the counts ``n_clean``, ``n_ambiguous``, ``n_noisy``.
    """
    global_sim = global_sim.float()
    loss = per_pair_loss(scale * global_sim, local_logits)
    labels = split_by_loss(loss.detach(), g1, g2)
    if trusted is not None:
        labels = labels.masked_fill(trusted, CLEAN)
    clean, ambiguous, noisy = (labels == code for code in (CLEAN, AMBIGUOUS, NOISY))
    g = torch.where(clean, g1, g2)
    weights = self_paced_weight(loss, g)
    if trusted is not None:
        weights = weights.masked_fill(trusted, 1.0)
    self_paced = weights * loss + self_paced_regulariser(weights, g)
    if trusted is not None:
        self_paced = torch.where(trusted, loss, self_paced)
    bin_weight = torch.where(ambiguous, w_ambiguous, 1.0)
    per_pair = torch.where(noisy, w_noisy * robust_triplet(global_sim, m0), bin_weight * self_paced)
    details = {"per_pair": per_pair, "loss": loss.detach(), "labels": labels, "weights": weights}
    for name, mask in zip(LABELS, (clean, ambiguous, noisy)):
        details[name] = torch.where(mask, per_pair.detach(), 0.0).sum() / len(loss)
        details[f"n_{name}"] = mask.sum()
    return per_pair.mean(), details


def infonce_loss(
    global_sim: torch.Tensor, scale: float = 20.0, local_logits: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict]:
    """Plain symmetric InfoNCE baseline: ``mean_i per_pair_loss(scale * global_sim, local_logits)``.

    The sum (not CLIP's average) of the directions, so its per-pair ``loss`` in details is on
    the same scale as rrsitr_loss's; details' ``per_pair`` is the same loss with its gradient.
    """
    loss = per_pair_loss(scale * global_sim.float(), local_logits)
    return loss.mean(), {"per_pair": loss, "loss": loss.detach()}
