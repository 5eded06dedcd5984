"""One end-to-end run each of `nctool bench` and `nctool demo` on tiny data (1 epoch, batch 10)."""

import json
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import invoke, run_cli

from nctool.config import load_recipe
from nctool.data.synth import generate
from nctool.detect.detectors import detector_names
from nctool.errors import NctoolError
from nctool.model.checkpoint import read_checkpoint
from nctool.report.bench import METHODS, run_bench
from nctool.report.demo import HELD_OUT, STATED_SCORES
from nctool.schema import read_table, write_table

TINY = ["--set", "train.epochs=1", "--set", "train.batch_size=10", "--set", "train.warmup_steps=2",
        "--set", "eval.batch_size=64", "--set", "loss.infonce_warmup_epochs=0"]


@pytest.fixture(scope="module")
def clean_data(tmp_path_factory):
    return write_table(generate(30, size=32, seed=2), tmp_path_factory.mktemp("bench") / "clean.parquet")


@pytest.mark.slow
def test_bench_cli_runs_every_method_and_detector(clean_data, tmp_path):
    out = tmp_path / "bench"
    done = run_cli("bench", clean_data, "--out", out, "--rate", "0.4", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["method"]) == ["filtered", "oracle", "rrsitr", "vanilla"]
    assert results["mr"].notna().all()
    detection = pd.read_csv(out / "detection.csv")
    assert sorted(detection["detector"]) == sorted(detector_names())
    run = out / "runs" / "caption-shuffle-0.40" / "rrsitr-s3"
    for name in ("loss_histogram.png", "roc_pr.png", "scores.parquet", "kept.parquet"):
        assert (run / name).stat().st_size > 0, name
    assert (out / "mr_vs_noise_caption-shuffle.png").exists() and "Test mR" in (out / "results.md").read_text()
    # the oracle trains on the truly clean train pairs only
    oracle = pd.read_parquet(out / "data" / "caption-shuffle-0.40.oracle.parquet")
    assert not oracle["noisy"].any()

    assert len(list(out.rglob("last.pt"))) == 4  # --keep-last by default: every run can be continued

    # a second run reuses every finished training run instead of training again; --drop-last prunes them
    again = run_cli("bench", clean_data, "--out", out, "--rate", "0.4", "--drop-last", *TINY)
    assert again.returncode == 0 and "epoch 1/1" not in again.stderr
    assert pd.read_csv(out / "results.csv")["mr"].tolist() == results["mr"].tolist()
    assert not list(out.rglob("last.pt")) and len(list(out.rglob("best.pt"))) == 4

    # other detectors: the scores are made again (the training runs are reused)
    recipe = load_recipe("demo", [value for value in TINY if value != "--set"])
    run_bench(clean_data, out_dir=out, recipe=recipe, rates=[0.4], detectors=["similarity"])
    assert set(pd.read_csv(out / "detection.csv")["detector"]) == {"similarity"}
    # another recipe: refused in one line, not answered with the old runs
    other = run_cli("bench", clean_data, "--out", out, "--rate", "0.4", *TINY, "--set", "train.lr=0.01")
    assert other.returncode == 2 and other.stderr.strip().splitlines() == [
        f"error: --out {out}: holds a bench of another recipe (train.lr is 0.01 here but 0.001 in the run); choose "
        f"another --out, or give the settings it was made with to continue it"], other.stderr


def test_bench_refuses_unknown_method_before_work(clean_data, tmp_path):
    with pytest.raises(NctoolError, match="unknown method or noise kind"):
        run_bench(clean_data, out_dir=tmp_path / "b", recipe=load_recipe("demo"), methods=["magic"])
    assert not (tmp_path / "b").exists()


def test_bench_flags_reach_the_library(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr("nctool.report.bench.run_bench", lambda data, **kwargs: seen.update(kwargs, data=data) or
                        {"results": pd.DataFrame(columns=["kind", "noise_rate", "method", "mr", "mr_std", "seeds"]),
                         "detection": pd.DataFrame()})
    done = invoke("bench", tmp_path / "d.parquet", "--out", tmp_path / "b", "--recipe", "rsitmd", "--rate", "0.2",
                  "--rate", "0.6", "--kind", "category", "--seed", "13", "--method", "vanilla", "--detector",
                  "similarity", "--drop", "ambiguous", "--set", "train.epochs=2", "--device", "cpu")
    assert done.exit_code == 0, done.output
    assert seen["recipe"] == load_recipe("rsitmd", ["train.epochs=2"])
    assert (seen["rates"], seen["kinds"], seen["seeds"], seen["methods"], seen["detectors"], seen["drop"]) == \
        ([0.2, 0.6], ["category"], [13], ["vanilla"], ["similarity"], ["ambiguous"])
    assert (seen["out_dir"], seen["device"], seen["keep_last"]) == (tmp_path / "b", "cpu", True)
    assert invoke("bench", tmp_path / "d.parquet", "--out", tmp_path / "b", "--drop-last").exit_code == 0
    assert (seen["rates"], seen["methods"], seen["detectors"], seen["drop"]) == ((0.2, 0.4, 0.6, 0.8), METHODS,
                                                                                  None, ("noisy",))
    assert seen["keep_last"] is False


@pytest.mark.slow
def test_demo_cli_end_to_end(tmp_path):
    done = run_cli("demo", "--out", tmp_path / "demo", "--images", "30", "--base-images", "30", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "What you are looking at" in done.stdout and "fine-tuned from a small pretrained base" in done.stdout
    # every run fine-tuned from the base the demo built, on a corpus without the held-out classes
    base = tmp_path / "demo" / "base"
    assert set(read_table(base / "data.parquet", columns=["category"])["category"]).isdisjoint(HELD_OUT)
    for run in ("vanilla-s3", "rrsitr-s3"):
        config = json.loads((tmp_path / "demo" / "runs" / "caption-shuffle-0.40" / run / "config.json").read_text())
        assert config["model"]["pretrained"] == str(base / "run" / "best.pt")
    assert (tmp_path / "demo" / "results.md").exists()
    # the labels it states come from the base, which never trained on the noisy pairs (in-sample shares run low)
    assert "rrsitr scored by the base model, which never trained on these pairs" in " ".join(done.stdout.split())
    assert (tmp_path / "demo" / "runs" / "caption-shuffle-0.40" / STATED_SCORES).is_file()
    # one checkpoint per run: best.pt (weights, no optimizer state) stays, the resume file last.pt goes
    runs = [Path(run) for run in pd.read_csv(tmp_path / "demo" / "results.csv")["run"].dropna()]
    assert {"vanilla-s3", "rrsitr-s3"} <= {r.name for r in runs}  # filtered too when the filter keeps a batch
    assert not list((tmp_path / "demo").rglob("last.pt"))
    assert all("optimizer" not in read_checkpoint(r / "best.pt") and (r / "results.json").exists() for r in runs)
    again = run_cli("demo", "--out", tmp_path / "demo", "--images", "30", "--base-images", "30", *TINY)
    assert again.returncode == 0 and "epoch 1/1" not in again.stderr  # finished runs are reused, not retrained
    # the filter keeps a cleaner train split than it drops
    run = tmp_path / "demo" / "runs" / "caption-shuffle-0.40" / "rrsitr-s3"
    kept = read_table(run / "kept.parquet")
    noisy = read_table(tmp_path / "demo" / "data" / "caption-shuffle-0.40.parquet")
    dropped = noisy[(noisy["split"] == "train") & ~noisy["pair_id"].isin(kept["pair_id"])]
    kept_train = kept[kept["split"] == "train"]
    assert len(dropped) > 0 and kept_train["noisy"].mean() < dropped["noisy"].mean()


def test_bench_refuses_rates_that_share_a_run_folder(clean_data, tmp_path):
    with pytest.raises(NctoolError, match="two rates share a run folder"):
        run_bench(clean_data, out_dir=tmp_path / "b", recipe=load_recipe("demo"), rates=[0.4, 0.401])



def _fake_training(monkeypatch, trained: list, fail: bool = False):
    """train_once without training: a finished run's results.json, as a bench leaves it (or a Ctrl-C first)."""
    def train_once(data, run_dir, recipe, device, progress, keep_last):
        if fail:
            raise KeyboardInterrupt
        if not (run_dir / "results.json").exists():
            trained.append(run_dir.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "results.json").write_text(json.dumps({"test": {"mr": 50.0, "rsum": 300.0}, "best_epoch": 1}))
        return {"mr": 50.0, "rsum": 300.0, "best_epoch": 1, "run": str(run_dir)}

    monkeypatch.setattr("nctool.report.bench.train_once", train_once)


def test_bench_reuses_runs_only_of_the_same_data_and_recipe(clean_data, tmp_path, monkeypatch):
    recipe, out, trained = load_recipe("demo"), tmp_path / "b", []
    grid = {"rates": [0.4], "methods": ["vanilla"]}
    other = read_table(clean_data)
    other.loc[0, "caption"] = "another caption"
    other_data = write_table(other, tmp_path / "other.parquet")
    # stopped before any run finished: another dataset may take the folder, and its noisy file is made again
    _fake_training(monkeypatch, trained, fail=True)
    with pytest.raises(KeyboardInterrupt):
        run_bench(clean_data, out_dir=out, recipe=recipe, **grid)
    _fake_training(monkeypatch, trained)
    run_bench(other_data, out_dir=out, recipe=recipe, **grid)
    assert "another caption" in set(read_table(out / "data" / "caption-shuffle-0.40.parquet")["caption"])
    run_bench(other_data, out_dir=out, recipe=recipe, **grid)
    assert trained == ["vanilla-s3"]  # the finished run is reused by the same data and recipe ...
    # ... and refused to another dataset, recipe or filter, whose runs it is not
    with pytest.raises(NctoolError, match=rf"^--out {out}: holds a bench of another dataset than {clean_data} \(its "
                                          rf"fingerprint differs\); choose another --out, or give the data"):
        run_bench(clean_data, out_dir=out, recipe=recipe, **grid)
    with pytest.raises(NctoolError, match=r"holds a bench of another recipe \(train.seed is 4 here but 3 in the run\)"):
        run_bench(other_data, out_dir=out, recipe=load_recipe("demo", ["train.seed=4"]), **grid)
    with pytest.raises(NctoolError, match=r"holds a bench whose filter dropped noisy, not ambiguous, noisy"):
        run_bench(other_data, out_dir=out, recipe=recipe, drop=["noisy", "ambiguous"], **grid)
    assert trained == ["vanilla-s3"]
    # a bench folder of an nctool that did not record what its runs were made from
    (out / "bench.json").unlink()
    with pytest.raises(NctoolError, match=r"holds bench runs without a record of the data and recipe they were made "
                                          r"from \(an older nctool\)"):
        run_bench(other_data, out_dir=out, recipe=recipe, **grid)


def test_bench_identity_keys_what_changes_a_run():
    from nctool.report.bench import bench_identity

    frame = generate(10, size=32, seed=2)
    base = bench_identity(frame, load_recipe("demo"), noise_seed=42, drop=["noisy"])
    assert base == bench_identity(frame.copy(), load_recipe("demo"), noise_seed=42, drop=("noisy",))
    changed = frame.copy()
    changed.loc[1, "image_id"] = "other"
    for other in (bench_identity(changed, load_recipe("demo"), noise_seed=42, drop=["noisy"]),
                  bench_identity(frame, load_recipe("demo", ["eval.batch_size=7"]), noise_seed=42, drop=["noisy"]),
                  bench_identity(frame, load_recipe("demo"), noise_seed=1, drop=["noisy"]),
                  bench_identity(frame, load_recipe("demo"), noise_seed=42, drop=["noisy", "ambiguous"])):
        assert other != base
