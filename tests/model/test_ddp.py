"""DDP (torchrun, 2 gloo processes on the CPU) takes the steps one process takes with the same global batch.

Each torchrun launch runs tests/model/ddp_worker.py, which runs `nctool train` as a user would and records
each step's per-pair losses; the one-process runs go in-process with the same recording.
"""

import json
import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
from ddp_worker import StopAfter, record_pair_losses

import nctool.model.train
from nctool.config import load_recipe
from nctool.data.noise import inject
from nctool.data.synth import generate
from nctool.model.checkpoint import read_checkpoint
from nctool.model.losses import AMBIGUOUS, CLEAN, NOISY
from nctool.model.train import TrainingInterrupted, train
from nctool.schema import write_table

# 40 train rows in global batches of 10: 4 steps an epoch, 8 in all; the local term on, so that
# every gathered embedding counts, and RRSITR from epoch 2 (the InfoNCE warm-up ends after epoch 1
# whatever the split). Thresholds raised (g/2 at B = 10) so that the per-pair losses of this barely
# trained model (4 to 200 with the local term) fall in all three bins.
OVERRIDES = ["train.batch_size=10", "train.epochs=2", "train.warmup_steps=3", "eval.batch_size=64",
             "loss.use_local=true", "loss.warmup_min_learned=0.0", "loss.g1=60.0", "loss.g2=160.0"]
STEPS = 8
WORKER = Path(__file__).with_name("ddp_worker.py")

# Two processes add the same numbers in another order: DDP sums two half-batch gradients (the
# forward passes of 5 and of 10 pairs gave bit-identical embeddings here). That float32 rounding
# grows over the steps: measured on this recipe, per-pair losses differ by up to 1.6e-4 relative,
# logged losses and grad norms by up to 7e-5, Adam's moments by 1.2e-4 of their norm. RTOL keeps
# over 10x margin and is still far below what a wrong step does: without the gathering each
# process sees 5 negatives, not 10 (chance loss 4 ln 5 against 4 ln 10), and a wrong gradient
# scale shows in every grad norm (x2 at 2 processes).
RTOL, ATOL = 2e-3, 1e-5
# Weights differ by up to 3e-5 of their norm (per tensor), with one exception: the key third of
# each attention's in_proj_bias. Softmax ignores a shift that is equal for every key, so the true
# gradient of the key bias is 0 and the computed one is rounding noise, which Adam (it divides by
# the gradient's own RMS) turns into lr-sized steps of either sign. It has no effect on any
# output and is left out of the comparison.
WEIGHTS_RTOL = 3e-4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    frame, _ = inject(generate(10, size=32, seed=1), 0.4, "caption-shuffle", seed=0)
    return write_table(frame, tmp_path_factory.mktemp("data") / "noisy.parquet")


@pytest.fixture(autouse=True)
def one_thread():
    """The in-process runs on one thread, as torchrun's workers (OMP_NUM_THREADS=1): far quicker on 2 shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _in_process(data, out, monkeypatch, *, resume=False, stop=0) -> list[torch.Tensor]:
    """One process, as `nctool train` runs it; returns each step's per-pair losses."""
    losses = []
    with monkeypatch.context() as patch:
        patch.setattr(nctool.model.train, "get_objective", record_pair_losses(losses))
        if stop:
            patch.setattr(nctool.model.train, "_stop_on_sigint", lambda: nullcontext(StopAfter(stop)))
        try:
            train(data, out_dir=out, recipe=None if resume else load_recipe("demo", OVERRIDES), resume=resume)
        except TrainingInterrupted:
            assert stop
    return losses


def _torchrun_resume(data, out, *, stop: int) -> list[torch.Tensor]:
    """Resume the run in `out` with 2 gloo processes launched as a user would, stopping it after `stop`
    steps as a Ctrl-C would; returns each step's per-pair losses."""
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(WORKER), str(out / "record"), str(stop), "train", str(data), "--out", str(out),
                           "--resume"], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode != 0 and "interrupted at epoch 2, step 2" in done.stderr, done.stderr[-3000:]
    per_rank = [torch.load(out / f"record.rank{rank}.pt") for rank in (0, 1)]
    # every process computes the whole batch's losses from the same gathered embeddings
    assert all(torch.equal(a, b) for a, b in zip(*per_rank)) and len(per_rank[0]) == len(per_rank[1])
    return per_rank[0]


def _log(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _assert_same_run(out, ref):
    """The run in `out` ended where the one-process run `ref` did: steps, split labels, weights."""
    ours, theirs = read_checkpoint(out / "last.pt"), read_checkpoint(ref / "last.pt")
    assert (ours["epoch"], ours["step"], ours["batch"]) == (theirs["epoch"], theirs["step"], theirs["batch"])
    assert torch.equal(ours["epoch_labels"], theirs["epoch_labels"])  # split labels per pair, the last epoch
    for name, weights in theirs["model"].items():
        assert _relative_difference([_without_key_bias(name, ours["model"][name])],
                                    [_without_key_bias(name, weights)]) < WEIGHTS_RTOL, name
    # the optimiser's state travels too (its key-bias moments are noise-sized, a negligible share)
    for moment in ("exp_avg", "exp_avg_sq"):
        assert _relative_difference([s[moment] for s in ours["optimizer"]["state"].values()],
                                    [s[moment] for s in theirs["optimizer"]["state"].values()]) < RTOL
    assert [s["step"] for s in ours["optimizer"]["state"].values()] == \
        [s["step"] for s in theirs["optimizer"]["state"].values()]
    log, ref_log = _log(out), _log(ref)
    assert [r["step"] for r in log] == [r["step"] for r in ref_log]
    for ours_record, record in zip(log, ref_log):
        for key, value in record.items():
            if isinstance(value, float) and key not in ("seconds", "pairs_per_s", "lr"):
                assert ours_record[key] == pytest.approx(value, rel=RTOL, abs=ATOL), (record["step"], key)
            elif key not in ("seconds", "pairs_per_s"):
                assert ours_record[key] == value, (record["step"], key)  # counts per bin, objective, lr


def _without_key_bias(name: str, weights: torch.Tensor) -> torch.Tensor:
    if not name.endswith("attn.in_proj_bias"):
        return weights
    third = len(weights) // 3  # query, key, value
    return torch.cat([weights[:third], weights[2 * third:]])


def _relative_difference(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> float:
    difference = sum(float(((a.double() - b.double()) ** 2).sum()) for a, b in zip(ours, theirs, strict=True))
    return (difference / max(sum(float((b.double() ** 2).sum()) for b in theirs), 1e-30)) ** 0.5


def _assert_same_losses(ours, theirs):
    assert len(ours) == len(theirs)
    for step, (a, b) in enumerate(zip(ours, theirs), 1):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL, msg=f"per-pair losses of step {step}")


@pytest.mark.slow
def test_a_run_handed_between_one_and_two_processes_takes_the_steps_of_one(data, tmp_path, monkeypatch):
    ref_losses = _in_process(data, tmp_path / "one", monkeypatch)
    assert len(ref_losses) == STEPS and all(len(losses) == 10 for losses in ref_losses)
    labels = read_checkpoint(tmp_path / "one" / "last.pt")["epoch_labels"]
    assert set(labels[labels >= 0].tolist()) == {CLEAN, AMBIGUOUS, NOISY}
    assert [r["objective"] for r in _log(tmp_path / "one") if "loss" in r] == ["infonce"] * 4 + ["rrsitr"] * 4

    # 1 process stopped mid-epoch 1; 2 processes resume it, finish epoch 1 (its split, validation,
    # checkpoints) and stop mid-epoch 2 (RRSITR); 1 process resumes that and finishes
    run = tmp_path / "handed"
    losses = _in_process(data, run, monkeypatch, stop=2)
    assert read_checkpoint(run / "last.pt")["batch"] == 2
    losses += _torchrun_resume(data, run, stop=4)
    assert (read_checkpoint(run / "last.pt")["epoch"], read_checkpoint(run / "last.pt")["batch"]) == (1, 2)
    _assert_same_losses(losses, ref_losses[:6])  # per step, the per-pair losses the split reads
    losses += _in_process(data, run, monkeypatch, resume=True)
    _assert_same_losses(losses, ref_losses)
    _assert_same_run(run, tmp_path / "one")
