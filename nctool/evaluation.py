"""Retrieval evaluation as method.md's protocol: score = 0.9 global + 0.1 local, R@1/5/10 both ways."""

from __future__ import annotations

from typing import Sequence

import torch

from nctool.data import PairData, encode_dataset
from nctool.metrics import retrieval_recalls
from nctool.model import RetrievalModel, pair_scores


def evaluate_retrieval(model: RetrievalModel, data: PairData, rows: Sequence[int], eval_cfg: dict,
                       device: torch.device | str, progress=None, stage: str = "evaluate") -> dict:
    """Recalls (percent) and mR of the rows' images against the rows' captions."""
    def report(done, total, description):
        if progress:
            progress(done, total, f"{stage}: {description}")

    use_local = bool(eval_cfg["w_local"])
    emb = encode_dataset(model, data, rows, batch_size=eval_cfg["batch_size"], device=device,
                         progress=report, local=use_local)
    # padding positions arrive zeroed when the model masks them, so no mask is passed here
    scores = pair_scores(emb["image_global"], emb["image_local"], emb["text_global"], emb["text_local"],
                         w_global=eval_cfg["w_global"], w_local=eval_cfg["w_local"])
    return retrieval_recalls(scores, emb["caption_image_index"])
