"""Run `nctool ARGS` as a user would, recording what tests/model/test_ddp.py compares.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/model/ddp_worker.py RECORD STOP ARGS...

Each process writes every step's per-pair losses (the ones the split reads) to RECORD.rank<R>.pt;
with STOP > 0 the run stops as a Ctrl-C would once STOP steps of this session are done.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from contextlib import nullcontext

import torch

import nctool.model.train


class StopAfter(dict):
    """The Ctrl-C flag of nctool.model.train, raised at its `steps`-th reading (it is read once per step)."""

    def __init__(self, steps: int):
        super().__init__()
        self.left = steps

    def __getitem__(self, key: str) -> bool:
        self.left -= 1
        return self.left == 0


def record_pair_losses(store: list):
    """A get_objective for nctool.model.train whose objectives append each step's per-pair losses to `store`."""
    original = nctool.model.train.get_objective

    def recording(name: str):
        objective = original(name)

        def fn(*args):
            loss, details = objective.fn(*args)
            store.append(details["loss"].cpu())
            return loss, details
        return dataclasses.replace(objective, fn=fn)
    return recording


if __name__ == "__main__":
    record, stop, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    losses: list[torch.Tensor] = []
    nctool.model.train.get_objective = record_pair_losses(losses)
    if stop:
        nctool.model.train._stop_on_sigint = lambda: nullcontext(StopAfter(stop))
    from nctool.cli import main

    sys.argv = ["nctool", *args]
    try:
        main()
    finally:
        torch.save(losses, f"{record}.rank{os.environ.get('RANK', '0')}.pt")
