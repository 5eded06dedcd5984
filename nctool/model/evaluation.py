"""Retrieval evaluation by the method's protocol (docs/method.md): score = w_global * global cosine +
w_local * local similarity, R@1/5/10 both ways."""

from __future__ import annotations

from typing import Sequence

import torch

from nctool.config import EvalCfg
from nctool.errors import NctoolError
from nctool.metrics import retrieval_recalls
from nctool.model.batches import PairData, encode_dataset
from nctool.model.clip import RetrievalModel, pair_scores
from nctool.progress import Progress


def evaluate_retrieval(model: RetrievalModel, data: PairData, rows: Sequence[int], eval_cfg: EvalCfg,
                       device: torch.device | str, progress: Progress | None = None, stage: str = "evaluate") -> dict:
    """R@1/5/10 both ways (percent), their sum `rsum` and their mean `mr`, of the rows' images against the
    rows' captions. No rows: refused in one line."""
    if len(rows) == 0:
        raise NctoolError(f"{stage}: no rows to evaluate; give a split with at least one pair")

    def report(done, total, description):
        if progress:
            progress(done, total, f"{stage}: {description}")

    use_local = bool(eval_cfg.w_local)
    emb = encode_dataset(model, data, rows, batch_size=eval_cfg.batch_size, device=device,
                         progress=report, local=use_local)
    scores = pair_scores(emb.image_global, emb.image_local, emb.text_global, emb.text_local,
                         w_global=eval_cfg.w_global, w_local=eval_cfg.w_local)
    return retrieval_recalls(scores, emb.caption_image_index)
