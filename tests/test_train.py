import json
import math
import os
import signal

import pytest
import torch

from nctool.config import load_recipe
from nctool.errors import NctoolError
from nctool.noise import inject
from nctool.schema import write_table
from nctool.synth import generate
from nctool.train import TrainingInterrupted, build_optimizer, lr_factor, train
from tests.cli_helpers import run_cli


@pytest.fixture(scope="module")
def noisy_data(tmp_path_factory):
    frame, _ = inject(generate(40, size=32, seed=1), 0.4, "caption-shuffle", seed=0)
    return write_table(frame, tmp_path_factory.mktemp("data") / "noisy.parquet")


def _config(**train):
    overrides = ["train.batch_size=10", "train.epochs=2", "train.warmup_steps=3", "eval.batch_size=64",
                 *(f"train.{k}={v}" for k, v in train.items())]
    return load_recipe("demo", overrides)


def test_lr_factor_warms_up_linearly_then_decays_to_zero():
    assert lr_factor(0, 4, 20) == pytest.approx(0.25)
    assert lr_factor(3, 4, 20) == pytest.approx(1.0)
    assert lr_factor(12, 4, 20) == pytest.approx(0.5)  # half way through the cosine
    assert lr_factor(20, 4, 20) == pytest.approx(0.0)


def test_weight_decay_only_on_matrices():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    groups = build_optimizer(model, _config()["train"]).param_groups
    decayed = {p.ndim for p in groups[0]["params"]}
    assert groups[0]["weight_decay"] == _config()["train"]["weight_decay"] and decayed == {2}
    assert groups[1]["weight_decay"] == 0.0 and {p.ndim for p in groups[1]["params"]} == {1}


def test_training_writes_run_folder_and_logs_split_quality(noisy_data, tmp_path):
    result = train(noisy_data, _config(), tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} >= {"best.pt", "last.pt", "metrics.jsonl",
                                                               "config.json", "results.json"}
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r.get("kind") == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert sum(epochs[-1][f"n_{n}"] for n in ("clean", "ambiguous", "noisy")) == 160  # every train row binned
    assert "noisy_precision" in epochs[-1] or epochs[-1]["n_noisy"] == 0
    assert all(math.isfinite(r["loss"]) for r in records if "loss" in r)
    assert 0 <= result["test"]["mr"] <= 100 and "val_mr" in epochs[0]


def test_interrupted_then_resumed_run_matches_uninterrupted(noisy_data, tmp_path):
    train(noisy_data, _config(), tmp_path / "full")

    def interrupt_at_step_7(done, total, description):
        if description.startswith("epoch 1") and done == 7:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, mid-epoch

    with pytest.raises(TrainingInterrupted):
        train(noisy_data, _config(), tmp_path / "cut", progress=interrupt_at_step_7)
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=False)["batch"] == 7
    train(noisy_data, _config(), tmp_path / "cut", resume=True)

    full = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    cut = torch.load(tmp_path / "cut" / "last.pt", weights_only=False)
    assert full["step"] == cut["step"]
    for name, tensor in full["model"].items():
        assert torch.equal(tensor, cut["model"][name]), name
    log = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log if "loss" in line] == list(range(1, full["step"] + 1))


def test_bad_inputs_are_one_line_errors(noisy_data, tmp_path):
    with pytest.raises(NctoolError, match="does not fit the 160 train rows"):
        train(noisy_data, _config(batch_size=500), tmp_path / "a")
    train(noisy_data, _config(epochs=1), tmp_path / "b")
    with pytest.raises(NctoolError, match="already holds a run"):
        train(noisy_data, _config(epochs=1), tmp_path / "b")
    with pytest.raises(NctoolError, match="--resume: .* not found"):
        train(noisy_data, _config(), tmp_path / "c", resume=True)


def test_train_cli_end_to_end_and_bad_option(noisy_data, tmp_path):
    ok = run_cli("train", noisy_data, "--out", tmp_path / "r", "--epochs", "1", "--batch-size", "10",
                 "--set", "eval.batch_size=64")
    assert ok.returncode == 0, ok.stderr
    assert "Test (best epoch 1)" in ok.stdout and (tmp_path / "r" / "best.pt").exists()
    bad = run_cli("train", noisy_data, "--out", tmp_path / "s", "--set", "train.lrr=1")
    assert bad.returncode == 2 and "unknown key 'train.lrr'" in bad.stderr and "Traceback" not in bad.stderr
