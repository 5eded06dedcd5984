import fractions
import json
import math
import os
import pickle
import signal
import warnings

import numpy as np
import pytest
import torch
from cli_helpers import invoke, run_cli

import nctool.model.train
from nctool.config import load_recipe
from nctool.data.noise import inject
from nctool.data.synth import generate
from nctool.errors import NctoolError
from nctool.model.checkpoint import read_checkpoint, save_checkpoint
from nctool.model.clip import load_trained_model
from nctool.model.losses import NOISY
from nctool.model.train import (
    TrainingInterrupted,
    build_optimizer,
    epoch_order,
    image_folds,
    lr_factor,
    train,
    train_folds,
)
from nctool.runtime import pick_device
from nctool.schema import pair_id_hashes, read_table, write_table


@pytest.fixture(scope="module")
def noisy_data(tmp_path_factory):
    frame, _ = inject(generate(40, size=32, seed=1), 0.4, "caption-shuffle", seed=0)
    return write_table(frame, tmp_path_factory.mktemp("data") / "noisy.parquet")


def _recipe(**train):
    overrides = ["train.batch_size=10", "train.epochs=2", "train.warmup_steps=3", "eval.batch_size=64",
                 *(f"train.{k}={v}" for k, v in train.items())]
    return load_recipe("demo", overrides)


def _weights(path):
    return read_checkpoint(path)["model"]


def _same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


@pytest.fixture(scope="module")
def full_run(noisy_data, tmp_path_factory):
    """One uninterrupted 2-epoch run that the resume tests compare against."""
    out = tmp_path_factory.mktemp("runs") / "full"
    return out, train(noisy_data, out_dir=out, recipe=_recipe())


def test_lr_factor_warms_up_linearly_then_decays_to_zero():
    assert lr_factor(0, 4, 20) == pytest.approx(0.25)
    assert lr_factor(3, 4, 20) == pytest.approx(1.0)
    assert lr_factor(12, 4, 20) == pytest.approx(0.5)  # half way through the cosine
    assert lr_factor(20, 4, 20) == pytest.approx(0.0)


def test_weight_decay_only_on_matrices():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    groups = build_optimizer(model, _recipe().train).param_groups
    decayed = {p.ndim for p in groups[0]["params"]}
    assert groups[0]["weight_decay"] == _recipe().train.weight_decay and decayed == {2}
    assert groups[1]["weight_decay"] == 0.0 and {p.ndim for p in groups[1]["params"]} == {1}


@pytest.mark.slow
def test_training_writes_run_folder_and_logs_split_quality(full_run, noisy_data):
    out, result = full_run
    assert {p.name for p in out.iterdir()} == {"best.pt", "last.pt", "metrics.jsonl", "config.json", "results.json"}
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r.get("kind") == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert sum(epochs[-1][f"n_{n}"] for n in ("clean", "ambiguous", "noisy")) == 160  # every train row binned
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 33))  # 160 rows / 10, 2 epochs
    assert all(math.isfinite(r["loss"]) for r in records if "loss" in r)
    # the demo recipe warms up with InfoNCE for one epoch
    assert {r["objective"] for r in records if r.get("epoch") == 1 and "loss" in r} == {"infonce"}
    # the test split is scored with best.pt, which holds the best val mR's weights, not the optimiser
    best = read_checkpoint(out / "best.pt")
    assert "optimizer" not in best and best["val_mr"] == max(r["val_mr"] for r in epochs)
    # which pairs it learned, for `score` to tell an in-sample judgement (the 160 train rows, in any order)
    frame = read_table(noisy_data)
    learned = pair_id_hashes(frame.loc[frame["split"] == "train", "pair_id"][::-1])
    assert len(learned) == 160 and best["trained_pairs"].numpy().tolist() == learned.tolist()
    assert result["best_epoch"] == best["epoch"] and result["test"]["mr"] > 0
    assert json.loads((out / "config.json").read_text()) == _recipe().to_dict()


@pytest.mark.slow
def test_interrupted_run_resumes_with_its_own_settings(noisy_data, full_run, tmp_path):
    full_out, _ = full_run

    def interrupt_at_step_7(done, total, description):
        if description.startswith("epoch 1") and done == 7:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, mid-epoch

    with pytest.raises(TrainingInterrupted):
        train(noisy_data, out_dir=tmp_path / "cut", recipe=_recipe(), progress=interrupt_at_step_7)
    assert read_checkpoint(tmp_path / "cut" / "last.pt")["batch"] == 7
    # resume takes every setting from the checkpoint (batch 10 here, not the demo recipe's 100) ...
    with pytest.raises(NctoolError, match="train.epochs is 4 here but 2 in the run"):
        train(noisy_data, out_dir=tmp_path / "cut", recipe=load_recipe("demo"), resume=True)
    train(noisy_data, out_dir=tmp_path / "cut", resume=True)

    full, cut = read_checkpoint(full_out / "last.pt"), read_checkpoint(tmp_path / "cut" / "last.pt")
    assert full["step"] == cut["step"] == 32
    assert _same_weights(full["model"], cut["model"])
    log = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log if "loss" in line] == list(range(1, 33))


@pytest.mark.slow
def test_resume_skips_a_torn_last_line_of_the_metrics_log(noisy_data, tmp_path):
    def interrupt_at_step_3(done, total, description):
        if description.startswith("epoch 1") and done == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted):
        train(noisy_data, out_dir=tmp_path / "cut", recipe=_recipe(epochs=1), progress=interrupt_at_step_3)
    log = tmp_path / "cut" / "metrics.jsonl"
    with log.open("a") as file:  # killed while writing a record
        file.write('{"step": 4, "epoch": 1, "lo')
    result = train(noisy_data, out_dir=tmp_path / "cut", resume=True)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines() if "loss" in line] == list(range(1, 17))
    assert f"{log}: dropped 1 torn line(s) (the run was stopped while writing one)" in result["notes"]


@pytest.mark.slow
def test_resume_refuses_another_dataset(noisy_data, tmp_path):
    train(noisy_data, out_dir=tmp_path / "run", recipe=_recipe(epochs=1))
    other = read_table(noisy_data)
    other.loc[0, "caption"] = "a different caption"
    write_table(other, tmp_path / "other.parquet")
    with pytest.raises(NctoolError, match="is not the data the run .* was started on"):
        train(tmp_path / "other.parquet", out_dir=tmp_path / "run", resume=True)


class Killed(BaseException):
    """A kill -9 stand-in: raised from inside a checkpoint write, before anything is renamed."""


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [1, 2, 3])
def test_a_kill_at_any_checkpoint_write_resumes_to_the_same_best_model(noisy_data, full_run, tmp_path, monkeypatch,
                                                                       kill_at):
    full_out, full = full_run
    assert full["best_epoch"] == 2  # epoch 2 improves, so its best.pt and last.pt writes both matter
    writes = []

    def dying_save(payload, dest):
        writes.append(dest)
        if len(writes) == kill_at + 1:
            raise Killed()
        return save_checkpoint(payload, dest)

    monkeypatch.setattr(nctool.model.train, "save_checkpoint", dying_save)
    with pytest.raises(Killed):
        train(noisy_data, out_dir=tmp_path / "run", recipe=_recipe())
    monkeypatch.undo()
    if kill_at == 1:  # killed before its first last.pt: nothing to resume, and nothing left behind
        assert not (tmp_path / "run").exists()
        result = train(noisy_data, out_dir=tmp_path / "run", recipe=_recipe())
    else:
        result = train(noisy_data, out_dir=tmp_path / "run", resume=True)
    assert _same_weights(_weights(tmp_path / "run" / "best.pt"), _weights(full_out / "best.pt"))
    assert result["test"] == full["test"] and result["best_epoch"] == 2


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing(noisy_data, tmp_path, monkeypatch):
    def broken_step(*args):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(nctool.model.train, "train_step", broken_step)
    with pytest.raises(RuntimeError):
        train(noisy_data, out_dir=tmp_path / "run", recipe=_recipe())
    assert not (tmp_path / "run").exists()


def test_bad_inputs_are_one_line_errors(noisy_data, full_run, tmp_path):
    with pytest.raises(NctoolError, match="does not fit the 160 train rows"):
        train(noisy_data, out_dir=tmp_path / "a", recipe=_recipe(batch_size=500))
    full_out, _ = full_run
    with pytest.raises(NctoolError, match="already holds a run"):
        train(noisy_data, out_dir=full_out, recipe=_recipe())
    (tmp_path / "only_best").mkdir()
    (tmp_path / "only_best" / "best.pt").write_bytes((full_out / "best.pt").read_bytes())
    with pytest.raises(NctoolError, match=r"already holds a run \(best.pt\)"):
        train(noisy_data, out_dir=tmp_path / "only_best", recipe=_recipe())
    with pytest.raises(NctoolError, match="--resume: .* not found"):
        train(noisy_data, out_dir=tmp_path / "c", resume=True)
    with pytest.raises(NctoolError, match="loss.kind 'triplet': unknown objective"):
        train(noisy_data, out_dir=tmp_path / "d", recipe=_recipe().with_values({"loss.kind": "triplet"}))
    no_category = tmp_path / "no_category.parquet"
    write_table(read_table(noisy_data).drop(columns="category"), no_category)
    with pytest.raises(NctoolError, match="classes_per_batch=4 draws each batch from a few scene classes, and the data "
                                          "has no `category` column"):
        train(no_category, out_dir=tmp_path / "e", recipe=_recipe().with_values({"train.classes_per_batch": 4}))
    assert not (tmp_path / "e").exists()
    for device in ("tpu", "cuda:x"):
        with pytest.raises(NctoolError, match=f"--device {device}"):
            pick_device(device)


@pytest.mark.slow
def test_a_protocol_4_pickle_is_refused_in_one_line_without_torchs_warning(noisy_data, tmp_path):
    # torch warns twice ("Detected pickle protocol 4 ...", two lines each) before the unpickler refuses
    torch.save({"model": {}, "config": {}, "extra": fractions.Fraction(1, 2)}, tmp_path / "p4.pt", pickle_protocol=4)
    done = run_cli("score", noisy_data, "--checkpoint", tmp_path / "p4.pt", "--out", tmp_path / "s.parquet")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'p4.pt'}: not loaded (it stores Python objects beyond tensors, numbers and text, which "
        f"could run code); use a checkpoint written by `nctool train`"], done.stderr
    with open(tmp_path / "plain.pt", "wb") as file:  # a plain pickle.dump: refused, and no warning either
        pickle.dump({"model": {}, "config": {}}, file, protocol=4)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with pytest.raises(NctoolError, match="plain.pt: not loaded"):
            read_checkpoint(tmp_path / "plain.pt")
    assert not shown, [str(warning.message) for warning in shown]


def test_a_checkpoint_whose_config_does_not_fit_is_one_line(full_run, tmp_path):
    full_out, _ = full_run
    payload = read_checkpoint(full_out / "best.pt")
    del payload["config"]["eval"]
    save_checkpoint(payload, tmp_path / "no_section.pt")
    with pytest.raises(NctoolError, match=r"section \[eval\] is missing"):
        load_trained_model(tmp_path / "no_section.pt")
    payload = read_checkpoint(full_out / "best.pt")
    payload["config"]["model"]["name"] = "ViT-B-32"
    save_checkpoint(payload, tmp_path / "other_model.pt")
    with pytest.raises(NctoolError, match="weights do not fit model ViT-B-32"):
        load_trained_model(tmp_path / "other_model.pt")


@pytest.mark.slow
def test_train_cli_end_to_end_and_bad_options(noisy_data, tmp_path):
    ok = run_cli("train", noisy_data, "--out", tmp_path / "r", "--epochs", "1", "--batch-size", "10",
                 "--set", "eval.batch_size=64")
    assert ok.returncode == 0, ok.stderr
    assert "Test (best epoch 1)" in ok.stdout and (tmp_path / "r" / "best.pt").exists()
    bad = run_cli("train", noisy_data, "--out", tmp_path / "s", "--lr", "-1")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == ["error: train.lr=-1.0: must be greater than 0"]
    for args, message in ((["--set", "train.lrr=1"], "train.lrr: unknown recipe key"),
                          (["--epochs", "0"], "train.epochs=0: must be at least 1"),
                          (["--set", "train.epochs=1.5"], "train.epochs=1.5: must be an int"),
                          (["--device", "tpu"], "--device tpu")):
        refused = invoke("train", noisy_data, "--out", tmp_path / "s", *args)
        assert isinstance(refused.exception, NctoolError) and message in str(refused.exception), args
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_review_decisions_shape_the_training_data(noisy_data, tmp_path):
    from nctool.data.decisions import DecisionStore

    frame = read_table(noisy_data)
    train_rows = frame[frame["split"] == "train"]
    noisy_ids = train_rows.loc[train_rows["noisy"], "pair_id"].tolist()
    with DecisionStore(tmp_path / "d.sqlite", reviewer="test") as store:
        for pair_id in noisy_ids[:5]:
            store.record(pair_id, "drop")
        store.record(noisy_ids[5], "keep")
        store.record(noisy_ids[6], "fix", new_caption="a fixed caption")
        store.record(frame.loc[frame["split"] == "test", "pair_id"].iloc[0], "drop")
    result = train(noisy_data, out_dir=tmp_path / "run", recipe=_recipe(epochs=1), decisions=tmp_path / "d.sqlite")
    assert result["notes"][:2] == ["7 review decision(s) applied to the train split",
                                   "1 decision(s) on pairs outside the train split were not applied: "
                                   "the run is measured there"]
    epoch = result["epochs"][0]
    # 160 train rows, 5 dropped: 155 remain, batches of 10 without the last partial one bin 150
    assert sum(epoch[f"n_{name}"] for name in ("clean", "ambiguous", "noisy")) == 150
    # the kept and the fixed pair are never binned noisy, though early losses bin most pairs noisy
    remaining = frame[~frame["pair_id"].isin(noisy_ids[:5])].reset_index(drop=True)
    labels = read_checkpoint(tmp_path / "run" / "last.pt")["epoch_labels"]
    trusted = remaining.index[remaining["pair_id"].isin(noisy_ids[5:7])]
    assert (labels[trusted] != NOISY).all() and (labels == NOISY).sum() > 75
    with pytest.raises(NctoolError, match="is not the data the run"):
        train(noisy_data, out_dir=tmp_path / "run", resume=True)


def test_image_folds_keep_an_image_whole_and_are_stable():
    images = np.array([f"img{i}" for i in range(60)]).repeat(3)
    folds = image_folds(images, 3)
    assert (folds.reshape(60, 3) == folds.reshape(60, 3)[:, :1]).all()  # all captions of an image in one fold
    assert set(folds) == {0, 1, 2} and (image_folds(images[::-1], 3) == folds[::-1]).all()


@pytest.mark.slow
def test_each_fold_model_trains_without_its_fold(noisy_data, tmp_path):
    result = train_folds(noisy_data, out_dir=tmp_path / "oof", recipe=_recipe(epochs=1), folds=2)
    frame = read_table(noisy_data)
    train_rows = frame[frame["split"] == "train"]
    fold = image_folds(train_rows["image_id"].to_numpy(), 2)
    for k, run in enumerate(result["runs"]):
        assert run["notes"][0] == f"fold {k} of 2: trained on {(fold != k).sum()} train pairs, the fold's left out"
        learned = read_checkpoint(tmp_path / "oof" / f"fold-{k}" / "best.pt")["trained_pairs"]
        assert learned.numpy().tolist() == pair_id_hashes(train_rows["pair_id"][fold != k]).tolist()
    manifest = json.loads((tmp_path / "oof" / "folds.json").read_text())
    assert manifest["folds"] == 2 and manifest["runs"] == ["fold-0/best.pt", "fold-1/best.pt"]
    again = train_folds(noisy_data, out_dir=tmp_path / "oof", recipe=_recipe(epochs=1), folds=2)
    assert again["runs"] == [None, None]  # finished folds are kept
    with pytest.raises(NctoolError, match="folds 1: must be at least 2"):
        train_folds(noisy_data, out_dir=tmp_path / "one", recipe=_recipe(), folds=1)


def test_train_folds_flag_reaches_the_library(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(nctool.model.train, "train_folds", lambda data, **kwargs: calls.append((data, kwargs)) or
                        {"out_dir": str(tmp_path / "oof"), "folds": 3, "runs": [{"test": {"mr": 40.0}}, None, None]})
    result = invoke("train", "d.parquet", "--out", str(tmp_path / "oof"), "--folds", "3", "--epochs", "1",
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    [(data, kwargs)] = calls
    assert str(data) == "d.parquet" and kwargs["folds"] == 3 and kwargs["recipe"].train.epochs == 1
    assert kwargs["device"] == "cpu" and "kept (finished before)" in result.output
    refused = invoke("train", "d.parquet", "--out", str(tmp_path / "oof"), "--folds", "3", "--resume")
    assert isinstance(refused.exception, NctoolError) and "--folds: not with --resume" in str(refused.exception)


def test_hard_negative_batches_hold_few_classes_and_one_caption_per_image():
    # 4 classes x 10 images x 5 captions; batches of 20 from 2 classes: groups of 10 pairs of one class
    rows = np.arange(200) + 1000
    images = np.repeat(np.arange(40), 5)
    classes = images // 10
    order = epoch_order(7, 2, rows, classes=classes, images=images, batch_size=20, classes_per_batch=2)
    assert sorted(order.tolist()) == rows.tolist()  # every pair once
    assert order.tolist() == epoch_order(7, 2, rows, classes=classes, images=images, batch_size=20,
                                         classes_per_batch=2).tolist()  # (seed, epoch) alone decide it
    position = order - 1000
    for start in range(0, 200, 20):
        batch = position[start:start + 20]
        assert len(np.unique(classes[batch])) <= 2  # two groups of 10, each of one class (maybe the same one)
        for group in (batch[:10], batch[10:]):
            assert len(np.unique(classes[group])) == 1 and len(np.unique(images[group])) == 10  # no false negative
    plain = epoch_order(7, 2, rows)
    assert sorted(plain.tolist()) == rows.tolist() and plain.tolist() != order.tolist()
