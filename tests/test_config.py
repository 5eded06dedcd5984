import pytest

from nctool.config import load_recipe
from nctool.errors import NctoolError


def test_paper_recipes_hold_method_defaults():
    for name in ("rsitmd", "rsicd", "nwpu"):
        cfg = load_recipe(name)
        assert cfg["model"]["name"] == "ViT-B-32"
        assert (cfg["loss"]["g1"], cfg["loss"]["g2"], cfg["loss"]["margin"]) == (5.0, 18.0, 0.6)
        assert (cfg["train"]["epochs"], cfg["train"]["batch_size"], cfg["train"]["lr"]) == (50, 100, 7e-6)
        assert cfg["train"]["weight_decay"] == 0.7 and cfg["train"]["warmup_steps"] == 200


def test_overrides_parse_types_and_refuse_unknown_keys():
    cfg = load_recipe("demo", ["train.lr=1e-4", "loss.kind=infonce", "train.epochs=2"])
    assert cfg["train"]["lr"] == 1e-4 and cfg["loss"]["kind"] == "infonce" and cfg["train"]["epochs"] == 2
    with pytest.raises(NctoolError, match="unknown key 'train.lrr'"):
        load_recipe("demo", ["train.lrr=1"])
    with pytest.raises(NctoolError, match="must be a int"):
        load_recipe("demo", ["train.epochs=many"])
    with pytest.raises(NctoolError, match="section.key=value"):
        load_recipe("demo", ["lr=1"])


def test_unknown_recipe_lists_shipped_ones():
    with pytest.raises(NctoolError, match="demo"):
        load_recipe("nope")
