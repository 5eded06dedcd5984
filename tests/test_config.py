import dataclasses

import pytest
from cli_helpers import invoke

from nctool.config import Recipe, load_recipe
from nctool.errors import NctoolError


def test_paper_recipes_hold_method_defaults():
    for name in ("rsitmd", "rsicd", "nwpu"):
        recipe = load_recipe(name)
        assert recipe.model.name == "ViT-B-32"
        assert (recipe.loss.g1, recipe.loss.g2, recipe.loss.margin) == (5.0, 18.0, 0.6)
        assert (recipe.train.epochs, recipe.train.batch_size, recipe.train.lr) == (50, 100, 7e-6)
        assert recipe.train.weight_decay == 0.7 and recipe.train.warmup_steps == 200


def test_overrides_parse_types_and_refuse_unknown_keys():
    recipe = load_recipe("demo", ["train.lr=1e-4", "loss.kind=infonce", "train.epochs=2"])
    assert recipe.train.lr == 1e-4 and recipe.loss.kind == "infonce" and recipe.train.epochs == 2
    with pytest.raises(NctoolError, match="train.lrr: unknown recipe key"):
        load_recipe("demo", ["train.lrr=1"])
    with pytest.raises(NctoolError, match="train.epochs='many': must be an int"):
        load_recipe("demo", ["train.epochs=many"])
    with pytest.raises(NctoolError, match="train.epochs=1.5: must be an int"):
        load_recipe("demo", ["train.epochs=1.5"])
    with pytest.raises(NctoolError, match="section.key=value"):
        load_recipe("demo", ["lr=1"])


def test_values_out_of_range_are_refused():
    recipe = load_recipe("demo")
    for key, value, message in (("train.lr", -1.0, "train.lr=-1.0: must be greater than 0"),
                                ("train.epochs", 0, "train.epochs=0: must be at least 1"),
                                ("loss.g1", 20.0, "need 0 < g1 < g2")):
        with pytest.raises(NctoolError, match=message):
            recipe.with_values({key: value})


def test_typed_values_are_set_as_given_without_toml_parsing():
    recipe = load_recipe("demo")
    for path in (r"C:\ckpt\new.pt", r"/data/x\tmp.pt", 'odd "quoted" name.pt'):
        assert recipe.with_values({"model.pretrained": path}).model.pretrained == path
    assert recipe.with_values({"train.lr": None}) == recipe  # None leaves the key as it is


def test_recipe_is_frozen_and_round_trips_through_a_plain_table():
    recipe = load_recipe("rsitmd")
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.train.lr = 1.0
    assert Recipe.from_dict(recipe.to_dict(), "table") == recipe


def test_a_missing_key_or_section_is_one_line(tmp_path):
    table = load_recipe("demo").to_dict()
    del table["train"]["lr"]
    text = "\n".join(f"[{section}]\n" + "\n".join(f"{k} = {v!r}".replace("True", "true").replace("False", "false")
                                                   for k, v in values.items()) for section, values in table.items())
    (tmp_path / "short.toml").write_text(text.replace("'", '"'))
    with pytest.raises(NctoolError, match="key train.lr is missing"):
        load_recipe(tmp_path / "short.toml")
    (tmp_path / "nosection.toml").write_text('[model]\nname = "nctool-tiny"\npretrained = ""\nmask_padding = false\n')
    with pytest.raises(NctoolError, match=r"section \[loss\] is missing"):
        load_recipe(tmp_path / "nosection.toml")


def test_extends_cycles_are_refused(tmp_path):
    (tmp_path / "a.toml").write_text('extends = "b"\n')
    (tmp_path / "b.toml").write_text('extends = "a"\n')
    (tmp_path / "self.toml").write_text('extends = "self"\n')
    with pytest.raises(NctoolError, match="loops"):
        load_recipe(tmp_path / "a.toml")
    with pytest.raises(NctoolError, match="loops"):
        load_recipe(tmp_path / "self.toml")


def test_extends_merges_over_the_base(tmp_path):
    (tmp_path / "mine.toml").write_text('extends = "demo"\n[train]\nepochs = 7\n')
    recipe = load_recipe(tmp_path / "mine.toml")
    assert recipe.train.epochs == 7 and recipe == load_recipe("demo").with_values({"train.epochs": 7})


def test_unknown_recipe_lists_shipped_ones():
    with pytest.raises(NctoolError, match="demo"):
        load_recipe("nope")


def test_recipes_ship_inside_the_package():
    import nctool

    assert (load_recipe("demo") == load_recipe(f"{nctool.__path__[0]}/recipes/demo.toml"))


def test_train_flags_set_recipe_fields(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr("nctool.model.train.train", lambda data, **kwargs: seen.update(kwargs, data=data) or
                        {"notes": [], "epochs": []})
    path = r"C:\ckpt\new.pt"
    result = invoke("train", tmp_path / "d.parquet", "--out", tmp_path / "run", "--recipe", "rsitmd",
                    "--epochs", "3", "--batch-size", "32", "--lr", "0.001", "--seed", "9", "--loss", "infonce",
                    "--pretrained", path, "--set", "eval.batch_size=64", "--device", "cpu",
                    "--image-root", tmp_path)
    assert result.exit_code == 0, result.output
    expected = load_recipe("rsitmd", ["eval.batch_size=64"]).with_values(
        {"train.epochs": 3, "train.batch_size": 32, "train.lr": 0.001, "train.seed": 9, "loss.kind": "infonce",
         "model.pretrained": path})
    assert seen["recipe"] == expected and seen["recipe"].model.pretrained == path
    assert (seen["out_dir"], seen["device"], seen["image_root"], seen["resume"]) == \
        (tmp_path / "run", "cpu", tmp_path, False)


def test_train_resume_takes_no_recipe_flags(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr("nctool.model.train.train", lambda data, **kwargs: seen.update(kwargs) or
                        {"notes": [], "epochs": []})
    assert invoke("train", tmp_path / "d.parquet", "--out", tmp_path / "run", "--resume").exit_code == 0
    assert seen["recipe"] is None and seen["resume"] is True
    refused = invoke("train", tmp_path / "d.parquet", "--out", tmp_path / "run", "--resume", "--batch-size", "32")
    assert isinstance(refused.exception, NctoolError) and "drop --batch-size" in str(refused.exception)


def test_finetune_recipe_is_the_demo_without_warm_up():
    demo, finetune = load_recipe("demo").to_dict(), load_recipe("finetune").to_dict()
    changed = {f"{section}.{key}": value for section, values in finetune.items() for key, value in values.items()
               if demo[section][key] != value}
    assert changed == {"loss.infonce_warmup_epochs": 0, "loss.warmup_min_learned": 0.0, "train.epochs": 3,
                       "train.lr": 1e-4, "train.warmup_steps": 0}


def test_a_recipe_of_before_a_key_with_a_default_loads_with_that_default():
    table = load_recipe("demo").to_dict()
    del table["train"]["classes_per_batch"]  # what a checkpoint of before hard negatives stores
    assert Recipe.from_dict(table, "old checkpoint").train.classes_per_batch == 0
    del table["train"]["epochs"]  # a key without a default is still required
    with pytest.raises(NctoolError, match="key train.epochs is missing"):
        Recipe.from_dict(table, "old checkpoint")
