"""The training objectives (nctool.model.objectives): the switch from the InfoNCE warm-up, and what each returns."""

import dataclasses

import torch

from nctool.config import load_recipe
from nctool.model.losses import per_pair_loss
from nctool.model.objectives import OBJECTIVES, objective_for_epoch


def test_objective_switch_from_the_infonce_warm_up():
    cfg = dataclasses.replace(load_recipe("demo").loss, infonce_warmup_epochs=1, warmup_min_learned=0.5)

    def switch(epoch, learned, started=False):
        return objective_for_epoch(cfg, epoch=epoch, learned_share=learned, started=started)

    assert switch(0, 1.0) == "infonce"            # the warm-up epochs come first
    assert switch(1, 0.49) == "infonce"           # ...and last until half the pairs are below g2
    assert switch(1, 0.5) == "rrsitr"
    assert switch(3, 0.0, started=True) == "rrsitr"  # once started it stays on
    plain = dataclasses.replace(cfg, kind="infonce")
    assert objective_for_epoch(plain, epoch=5, learned_share=1.0, started=False) == "infonce"


def test_objectives_return_the_loss_and_per_pair_details():
    cfg = load_recipe("demo").loss
    sim = torch.eye(4) * 0.8 + 0.1
    for name, objective in OBJECTIVES.items():
        loss, details = objective.fn(sim, None, cfg)
        assert loss.ndim == 0 and details["loss"].shape == (4,), name
    torch.testing.assert_close(OBJECTIVES["infonce"].fn(sim, None, cfg)[0], per_pair_loss(20 * sim).mean())
