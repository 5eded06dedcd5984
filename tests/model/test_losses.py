import math

import pytest
import torch

from nctool.errors import NctoolError
from nctool.model.losses import (
    AMBIGUOUS,
    CLEAN,
    NOISY,
    chance_loss,
    infonce_loss,
    per_pair_loss,
    robust_triplet,
    rrsitr_loss,
    self_paced_regulariser,
    self_paced_weight,
    split_by_loss,
    thresholds_for_batch,
)
from nctool.schema import LABELS

# Image i x text j cosines; pair 0 matches well, pair 1 weakly, pair 2 is beaten by negatives.
SIM = [[0.9, 0.1, 0.2], [0.3, 0.5, 0.45], [0.6, 0.5, 0.2]]


def hand_pair_loss(logits, i):
    """CE of row i plus CE of column i, written out with the math module."""
    row = math.log(sum(math.exp(x) for x in logits[i])) - logits[i][i]
    col = math.log(sum(math.exp(r[i]) for r in logits)) - logits[i][i]
    return row + col


def hand_self_paced(loss, g):
    """v*l + R(v; g) with v = cos(pi*l/(2g)), and v itself."""
    v = math.cos(math.pi * loss / (2 * g)) if loss < g else 0.0
    reg = -(2 * g / math.pi) * (v * math.acos(v) - math.sqrt(1 - v * v))
    return v * loss + reg, v


def test_per_pair_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    expected = [math.log1p(math.exp(-2)) + math.log1p(math.exp(-1)),
                math.log1p(math.exp(-2)) + math.log1p(math.exp(-3))]
    assert per_pair_loss(logits).tolist() == pytest.approx(expected)
    with_local = per_pair_loss(logits, torch.zeros(2, 2))
    assert with_local.tolist() == pytest.approx([e + 2 * math.log(2) for e in expected])


def test_per_pair_loss_matches_three_by_three():
    logits = [[20 * x for x in row] for row in SIM]
    expected = [hand_pair_loss(logits, i) for i in range(3)]
    assert per_pair_loss(torch.tensor(logits)).tolist() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("batch", [2, 7, 100])
def test_equal_logits_sit_at_chance(batch):
    flat = torch.zeros(batch, batch)
    assert chance_loss(batch) == pytest.approx(4 * math.log(batch))
    assert per_pair_loss(flat).tolist() == pytest.approx([chance_loss(batch, terms=2)] * batch)
    assert per_pair_loss(flat, flat).tolist() == pytest.approx([chance_loss(batch)] * batch)


def test_thresholds_follow_the_chance_loss():
    assert thresholds_for_batch(100) == (5.0, 18.0)
    g1, g2 = thresholds_for_batch(50)
    assert (g1, g2) == pytest.approx((5 * math.log(50) / math.log(100), 18 * math.log(50) / math.log(100)))
    assert g2 / chance_loss(50) == pytest.approx(18 / chance_loss(100))
    assert thresholds_for_batch(100, terms=2) == pytest.approx((2.5, 9.0))
    assert thresholds_for_batch(64, g1=4.0, g2=16.0, reference_batch=64) == (4.0, 16.0)
    with pytest.raises(NctoolError, match="batch size"):
        thresholds_for_batch(1)


def test_split_boundaries():
    assert (CLEAN, AMBIGUOUS, NOISY) == (0, 1, 2)
    assert [LABELS[code] for code in (CLEAN, AMBIGUOUS, NOISY)] == ["clean", "ambiguous", "noisy"]
    loss = torch.tensor([0.0, 4.999, 5.0, 17.999, 18.0, 40.0])
    labels = split_by_loss(loss, 5.0, 18.0)
    assert labels.dtype == torch.long
    assert labels.tolist() == [CLEAN, CLEAN, AMBIGUOUS, AMBIGUOUS, NOISY, NOISY]


def test_self_paced_weight_values_and_no_gradient():
    loss = torch.tensor([0.0, 2.5, 5.0, 7.0], requires_grad=True)
    v = self_paced_weight(loss, 5.0)
    assert v.tolist() == pytest.approx([1.0, math.sqrt(0.5), 0.0, 0.0], abs=1e-7)
    assert not v.requires_grad


def test_regulariser_end_points():
    v = torch.tensor([0.0, 1.0])
    assert self_paced_regulariser(v, 5.0).tolist() == pytest.approx([10 / math.pi, 0.0], abs=1e-6)


@pytest.mark.parametrize("g", [5.0, 18.0])
def test_weight_minimises_the_self_paced_objective(g):
    grid = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    regulariser = self_paced_regulariser(grid, g).double()
    for loss in [0.0, 0.3 * g, 0.5 * g, 0.9 * g, 0.999 * g, g, 2 * g]:
        best = grid[torch.argmin(grid * loss + regulariser)].item()
        assert best == pytest.approx(self_paced_weight(torch.tensor(loss), g).item(), abs=2e-3)


def test_robust_triplet_by_hand():
    sim = torch.tensor([[0.9, 0.2, 0.5], [0.3, 0.4, 0.6], [0.1, 0.7, 0.8]], requires_grad=True)
    trip = robust_triplet(sim)
    # pair 0: i2t gap 0.9-0.5 -> 0.6-0.4; t2i gap 0.9-0.3 = margin -> 0
    # pair 1: i2t gap -0.2, margin 0.72 -> 0.92; t2i gap -0.3, margin 0.78 -> 1.08
    # pair 2: i2t gap 0.1 -> 0.5; t2i gap 0.2 -> 0.4
    assert trip.tolist() == pytest.approx([0.2, 2.0, 0.9], abs=1e-6)
    trip[1].backward()
    # trip_1 = 2*m0 - (1 + m0) * (gap_i2t + gap_t2i): the margin's own gradient adds m0 per term.
    expected = torch.zeros(3, 3)
    expected[1, 1] = -2 * 1.6
    expected[1, 2] = 1.6  # hardest negative text of image 1
    expected[2, 1] = 1.6  # hardest negative image of text 1
    assert torch.allclose(sim.grad, expected)


def test_robust_triplet_ignores_the_diagonal_as_negative():
    sim = torch.tensor([[0.9, -0.5], [-0.5, 0.9]])
    assert robust_triplet(sim, m0=0.2).tolist() == pytest.approx([0.0, 0.0])


def test_rrsitr_total_with_one_pair_in_each_bin():
    g1, g2 = 0.5, 5.0
    sim = torch.tensor(SIM, requires_grad=True)
    total, details = rrsitr_loss(sim, None, g1, g2)

    losses = [hand_pair_loss([[20 * x for x in row] for row in SIM], i) for i in range(3)]
    assert losses[0] < g1 <= losses[1] < g2 <= losses[2]
    term1, v0 = hand_self_paced(losses[0], g1)
    term2, v1 = hand_self_paced(losses[1], g2)
    # pair 2: i2t hardest 0.6 (gap -0.4, margin 0.84); t2i hardest 0.45 (gap -0.25, margin 0.75)
    trip2 = (0.84 + 0.4) + (0.75 + 0.25)
    expected = (term1 + 0.8 * term2 + 0.9 * trip2) / 3

    assert total.item() == pytest.approx(expected, rel=1e-5)
    assert details["labels"].tolist() == [CLEAN, AMBIGUOUS, NOISY]
    assert details["loss"].tolist() == pytest.approx(losses, rel=1e-4)
    assert details["weights"].tolist() == pytest.approx([v0, v1, 0.0], rel=1e-5)
    parts = [details[name].item() for name in LABELS]
    assert parts == pytest.approx([term1 / 3, 0.8 * term2 / 3, 0.9 * trip2 / 3], rel=1e-4)
    assert sum(parts) == pytest.approx(total.item(), rel=1e-6)
    assert [int(details[f"n_{name}"]) for name in LABELS] == [1, 1, 1]
    # per_pair: each pair's term of the total, which it averages (DDP backpropagates a share of them)
    assert details["per_pair"].mean().item() == pytest.approx(total.item(), rel=1e-6)
    assert not any(value.requires_grad for name, value in details.items() if name != "per_pair")


def test_rrsitr_gradient_treats_weights_as_constants():
    sim = torch.tensor(SIM, requires_grad=True)
    total, details = rrsitr_loss(sim, None, 0.5, 5.0)
    total.backward()

    plain = torch.tensor(SIM, requires_grad=True)
    v = details["weights"]
    bin_weight = torch.tensor([1.0, 0.8, 0.0])
    surrogate = bin_weight * v * per_pair_loss(20 * plain) + torch.tensor([0.0, 0.0, 0.9]) * robust_triplet(plain)
    surrogate.mean().backward()
    assert torch.allclose(sim.grad, plain.grad, atol=1e-6)


def test_weight_jumps_at_g1():
    sim = torch.zeros(2, 2)  # every pair at chance: l = 2 ln 2 (global terms only)
    loss = 2 * math.log(2)
    g_at = per_pair_loss(sim)[0].item()  # the float32 loss itself
    _, below = rrsitr_loss(sim, None, g1=g_at + 1e-4, g2=2 * loss)
    _, at = rrsitr_loss(sim, None, g1=g_at, g2=2 * loss)
    assert below["labels"].tolist() == [CLEAN, CLEAN]
    assert below["weights"].tolist() == pytest.approx([0.0, 0.0], abs=1e-3)
    assert at["labels"].tolist() == [AMBIGUOUS, AMBIGUOUS]
    assert at["weights"].tolist() == pytest.approx([math.sqrt(0.5)] * 2, rel=1e-5)


def test_rrsitr_uses_the_local_terms():
    sim = torch.tensor(SIM)
    local = torch.tensor([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, -4.0]])
    _, details = rrsitr_loss(sim, local, 0.5, 5.0)
    assert details["loss"].tolist() == pytest.approx((per_pair_loss(20 * sim) + per_pair_loss(local)).tolist())


def test_low_precision_inputs_are_computed_in_float32():
    sim = torch.randn(8, 8, generator=torch.Generator().manual_seed(0)).tanh().bfloat16()
    local = 20 * sim
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, details = rrsitr_loss(sim, local, 5.0, 18.0)
        baseline, _ = infonce_loss(sim)
    reference, _ = rrsitr_loss(sim.float(), local.float(), 5.0, 18.0)
    assert total.dtype == baseline.dtype == details["loss"].dtype == torch.float32
    assert total.item() == pytest.approx(reference.item(), rel=1e-6)


def test_infonce_is_the_mean_per_pair_loss():
    sim = torch.tensor(SIM, requires_grad=True)
    total, details = infonce_loss(sim)
    losses = [hand_pair_loss([[20 * x for x in row] for row in SIM], i) for i in range(3)]
    assert details["loss"].tolist() == pytest.approx(losses, rel=1e-4)
    assert total.item() == pytest.approx(sum(losses) / 3, rel=1e-5)
    total.backward()
    assert sim.grad.abs().sum() > 0
    local_total, _ = infonce_loss(torch.zeros(4, 4), local_logits=torch.zeros(4, 4))
    assert local_total.item() == pytest.approx(chance_loss(4))


def test_batch_of_hundred_is_finite_and_differentiable():
    generator = torch.Generator().manual_seed(1)
    sim = torch.nn.functional.normalize(torch.randn(100, 16, generator=generator), dim=1)
    sim = (sim @ sim.T * 0.5 + 0.5 * torch.eye(100)).requires_grad_()
    g1, g2 = thresholds_for_batch(100, terms=2)
    total, details = rrsitr_loss(sim, None, g1, g2)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(sim.grad).all()
    assert sum(int(details[f"n_{name}"]) for name in LABELS) == 100


def test_trusted_pairs_are_clean_and_cost_their_plain_loss():
    sim = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.1, 0.8], [0.0, 0.3, 0.7]])
    g1, g2 = thresholds_for_batch(3, terms=2)
    plain, plain_details = rrsitr_loss(sim, None, g1, g2)
    trusted = torch.tensor([False, True, False])
    total, details = rrsitr_loss(sim, None, g1, g2, trusted=trusted)
    assert plain_details["labels"][1] == NOISY  # pair 1's caption matches image 2 better
    assert details["labels"].tolist() == [plain_details["labels"][0], CLEAN, plain_details["labels"][2]]
    assert details["weights"][1] == 1.0
    # pair 1 now costs its plain loss instead of 0.9 x its triplet; the other pairs cost what they did
    expected = (3 * plain - 0.9 * robust_triplet(sim)[1] + per_pair_loss(20 * sim)[1]) / 3
    torch.testing.assert_close(total, expected)
