"""Training objectives: what one batch of embeddings costs, by name (`loss.kind` in a recipe).

Each objective is registered with `@register(name, description)` and is a function
`(global_sim, local_logits, cfg, trusted) -> (loss, details)` on a batch whose matched pairs sit on
the diagonal: `global_sim` [B, B] holds unscaled cosines (images as rows), `local_logits` the
scaled local term or None, `cfg` the recipe's LossCfg, `trusted` a bool [B] of pairs a person
confirmed (or None). `details["loss"]` is always the per-pair loss [B] the three-way split reads,
and `details["per_pair"]` each pair's term of the returned loss with its gradient (the loss is
their mean: under DDP each process backpropagates its own pairs' terms, nctool.model.train). `batch_logits`
builds both matrices from embeddings; scoring uses the same two functions for its reference
batches, so both measure one loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from nctool.config import LossCfg
from nctool.errors import NctoolError

if TYPE_CHECKING:
    import torch

# torch (nctool.model.losses, nctool.model.clip) is imported inside the objectives: `nctool train --help`
# lists this registry and should not wait for it.
ObjectiveFn = Callable[["torch.Tensor", "torch.Tensor | None", LossCfg, "torch.Tensor | None"],
                       "tuple[torch.Tensor, dict]"]


@dataclass(frozen=True)
class Objective:
    name: str
    description: str
    fn: ObjectiveFn


OBJECTIVES: dict[str, Objective] = {}


def register(name: str, description: str) -> Callable[[ObjectiveFn], ObjectiveFn]:
    def add(fn: ObjectiveFn) -> ObjectiveFn:
        OBJECTIVES[name] = Objective(name, description, fn)
        return fn
    return add


def get_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise NctoolError(f"loss.kind '{name}': unknown objective; choose from {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


def global_similarity(image_global: torch.Tensor, text_global: torch.Tensor) -> torch.Tensor:
    """Cosines [Ni, Nt] of L2-normalised embeddings, in float32 (images as rows)."""
    return image_global.float() @ text_global.float().T


def local_logits(image_local: torch.Tensor, text_local: torch.Tensor, cfg: LossCfg) -> torch.Tensor:
    """The scaled local term [Ni, Nt]: local_scale * ||C||_F (nctool.model.clip.local_similarity)."""
    from nctool.model.clip import local_similarity

    return cfg.local_scale * local_similarity(text_local, image_local).T


def batch_logits(image_global: torch.Tensor, image_local: torch.Tensor | None, text_global: torch.Tensor,
                 text_local: torch.Tensor | None, cfg: LossCfg) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(global cosines, local logits or None when the recipe has no local term) of one batch."""
    local = local_logits(image_local, text_local, cfg) if cfg.use_local else None
    return global_similarity(image_global, text_global), local


@register("infonce", "plain symmetric InfoNCE on every pair (the baseline)")
def infonce(global_sim: torch.Tensor, local: torch.Tensor | None, cfg: LossCfg,
            trusted: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    from nctool.model import losses

    return losses.infonce_loss(global_sim, scale=cfg.logit_scale, local_logits=local)  # every pair counts fully


@register("rrsitr", "RRSITR: self-paced clean/ambiguous weights and a robust triplet on noisy pairs")
def rrsitr(global_sim: torch.Tensor, local: torch.Tensor | None, cfg: LossCfg,
           trusted: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    from nctool.model import losses

    g1, g2 = losses.recipe_thresholds(cfg, len(global_sim))
    return losses.rrsitr_loss(global_sim, local, g1, g2, scale=cfg.logit_scale, w_ambiguous=cfg.w_ambiguous,
                              w_noisy=cfg.w_noisy, m0=cfg.margin, trusted=trusted)


def objective_for_epoch(cfg: LossCfg, *, epoch: int, learned_share: float, started: bool) -> str:
    """The objective an epoch trains with: the InfoNCE warm-up, then the recipe's kind.

    An `rrsitr` recipe trains InfoNCE for its first `infonce_warmup_epochs` epochs, and after them
    until `learned_share` (the last epoch's share of train pairs below g2) reaches
    `warmup_min_learned`; once started, RRSITR stays on. Other kinds train as they are named.
    """
    if cfg.kind != "rrsitr" or started:
        return cfg.kind
    ready = epoch >= cfg.infonce_warmup_epochs and learned_share >= cfg.warmup_min_learned
    return "rrsitr" if ready else "infonce"
