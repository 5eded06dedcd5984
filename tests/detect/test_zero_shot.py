"""Zero-shot scoring: any open_clip model with the weights given, no training (`nctool score --model`)."""

import pandas as pd
import pytest
import torch
from cli_helpers import invoke
from safetensors.torch import save_file

import nctool.detect.score
from nctool.cli import main
from nctool.config import ZERO_SHOT_RECIPE, load_recipe
from nctool.data import noise, synth
from nctool.detect.detectors import detector_names
from nctool.detect.measure import ModelSource, PoolSpec
from nctool.detect.score import score
from nctool.errors import NctoolError
from nctool.model.checkpoint import save_checkpoint
from nctool.model.clip import create_model
from nctool.schema import write_table

OPTIONS = {"detectors": ["all"], "batch_size": 16, "pool": PoolSpec(repeats=2, pool_size=60),
           "options": {"neighbors": 3}}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Noised synth data; random nctool-tiny weights as an open_clip file and as an nctool checkpoint."""
    folder = tmp_path_factory.mktemp("zero_shot")
    df, _ = noise.inject(synth.generate(30, size=32, seed=1), 0.4, "caption-shuffle", seed=0)
    write_table(df, folder / "data.parquet")
    torch.manual_seed(0)
    model = create_model("nctool-tiny")
    save_file(model.clip.state_dict(), folder / "tiny.safetensors")
    # what `nctool train` would save for these weights, with the zero-shot default's loss settings
    recipe = load_recipe(ZERO_SHOT_RECIPE, ["model.name=nctool-tiny"])
    save_checkpoint({"model": model.state_dict(), "config": recipe.to_dict()}, folder / "best.pt")
    return folder, int((df["split"] == "train").sum())


def test_zero_shot_scores_equal_those_of_a_checkpoint_of_the_same_weights(files):
    folder, pairs = files
    summary = score(folder / "data.parquet", out=folder / "zero.parquet",
                    model=ModelSource(model="nctool-tiny", pretrained=folder / "tiny.safetensors"), **OPTIONS)
    zero = pd.read_parquet(folder / "zero.parquet")
    assert summary["pairs"] == pairs
    assert zero.groupby("detector").size().to_dict() == dict.fromkeys(detector_names(), pairs)
    assert zero["reliability"].notna().all() and zero.loc[zero["detector"] == "rrsitr", "loss"].notna().all()
    # the same weights through `--checkpoint`, and through an nctool checkpoint given as --pretrained
    score(folder / "data.parquet", out=folder / "trained.parquet", model=ModelSource(checkpoint=folder / "best.pt"),
          **OPTIONS)
    score(folder / "data.parquet", out=folder / "fine.parquet",
          model=ModelSource(model="nctool-tiny", pretrained=folder / "best.pt"), **OPTIONS)
    for other in ("trained.parquet", "fine.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(folder / other), zero, check_exact=True)


def test_zero_shot_recipe_defaults_to_the_papers_settings(files):
    folder, _ = files
    model, recipe = ModelSource(model="nctool-tiny").load()
    assert recipe == load_recipe("rsitmd") and recipe.loss.use_local and recipe.train.batch_size == 100
    assert (recipe.loss.g1, recipe.loss.g2) == (5.0, 18.0) and model.model_name == "nctool-tiny"
    assert not model.training and model.pretrained is None
    assert ModelSource(model="nctool-tiny", recipe="demo").load()[1] == load_recipe("demo")
    loaded = load_recipe("demo", ["train.batch_size=7"])  # a recipe already loaded, overrides and all (the demo's)
    assert ModelSource(model="nctool-tiny", recipe=loaded).load()[1] is loaded
    assert ModelSource(model="nctool-tiny", recipe=loaded).resolved().recipe is loaded


def test_local_features_of_a_model_without_patch_tokens_are_refused(files, tmp_path):
    folder, _ = files
    with pytest.raises(NctoolError, match="model RN50: its image tower .* has no projected patch tokens"):
        score(folder / "data.parquet", out=tmp_path / "s.parquet", model=ModelSource(model="RN50"),
              detectors=["rrsitr"])
    assert not (tmp_path / "s.parquet").exists()


@pytest.mark.parametrize("choice, message", [
    ({}, "score: no model given; give --checkpoint"),
    ({"checkpoint": "best.pt", "model": "nctool-tiny"}, "--checkpoint and --model: both given; give one"),
    ({"checkpoint": "best.pt", "pretrained": "tiny.safetensors"}, "--pretrained: only with --model"),
    ({"checkpoint": "best.pt", "recipe": "demo"}, "--recipe: only with --model"),
])
def test_model_choice_is_refused_before_any_work(files, tmp_path, choice, message):
    folder, _ = files
    with pytest.raises(NctoolError, match=message):
        score(folder / "data.parquet", out=tmp_path / "s.parquet",
              model=ModelSource.from_flags(**{key: folder / value if key in ("checkpoint", "pretrained") else value
                                              for key, value in choice.items()}))
    assert not (tmp_path / "s.parquet").exists()


def test_zero_shot_flags_reach_the_library(monkeypatch):
    calls = []
    monkeypatch.setattr(nctool.detect.score, "score", lambda *args, **kwargs: calls.append(kwargs) or
                        {"out": "s.parquet", "pairs": 3, "splits": ["train"], "labels": [],
                         "detectors": [{"detector": "similarity", "clean": 2, "ambiguous": 0, "noisy": 1}]})
    result = invoke("score", "d.parquet", "--model", "ViT-B-32", "--pretrained", "remoteclip.safetensors",
                    "--recipe", "demo", "--out", "s.parquet")
    assert result.exit_code == 0, result.output
    assert calls[0]["model"] == ModelSource(model="ViT-B-32", pretrained="remoteclip.safetensors", recipe="demo")
    assert invoke("score", "d.parquet", "--model", "nctool-tiny", "--out", "s.parquet").exit_code == 0
    assert calls[1]["model"] == ModelSource(model="nctool-tiny")


@pytest.mark.parametrize("flags", [[], ["--checkpoint", "best.pt", "--model", "nctool-tiny"]])
def test_score_cli_needs_exactly_one_model_in_one_line(capsys, tmp_path, flags):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # the console entry point, in-process
        main(["score", str(tmp_path / "d.parquet"), "--out", str(tmp_path / "s.parquet"), *flags])
    stderr = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and ("no model given" if not flags else "both given") in stderr
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr
