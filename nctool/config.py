"""Recipes: every training hyperparameter, read once from TOML into frozen dataclasses.

A recipe file is a two-level table (`[model]`, `[loss]`, `[train]`, `[eval]`) and must name every
field of the dataclasses below: a missing or unknown key is refused in one line, so a typo never
passes silently. `extends = "NAME"` starts from another recipe (a cycle is refused). The rest of
the code reads fields (`recipe.train.batch_size`); CLI flags set fields with `Recipe.with_values`,
and `--set section.key=value` strings (value parsed as TOML, e.g. `train.lr=1e-4`) go through
`Recipe.with_overrides`. Shipped recipes live in `nctool/recipes/`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import tomllib

from nctool.errors import NctoolError

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"
ZERO_SHOT_RECIPE = "rsitmd"  # a zero-shot model's loss settings: the paper's (local term on, g1/g2 5/18, batch 100)
ENGINES = ("local", "ray")  # where `score`/`embed` run the model: this process, or a Ray actor pool


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise NctoolError(f"{name}={value}: must be greater than 0")


def _at_least(name: str, value: int, least: int) -> None:
    if value < least:
        raise NctoolError(f"{name}={value}: must be at least {least}")


@dataclass(frozen=True)
class ModelCfg:
    name: str               # open_clip config name (nctool-tiny, ViT-B-32, ...)
    pretrained: str         # "" random init, an open_clip tag, a local open_clip file or an nctool checkpoint
    mask_padding: bool      # zero the text padding positions of the local embedding


@dataclass(frozen=True)
class LossCfg:
    kind: str               # a training objective (nctool.model.objectives: rrsitr, infonce)
    g1: float               # clean / ambiguous threshold at reference_batch
    g2: float               # ambiguous / noisy threshold at reference_batch
    reference_batch: int    # the batch size g1, g2 are set for; they follow the chance loss
    w_ambiguous: float
    w_noisy: float
    margin: float           # m0 of the robust triplet loss
    logit_scale: float      # fixed inverse temperature of the global logits
    local_scale: float      # scale of the local logits (training)
    use_local: bool         # add the local (token-level) terms
    infonce_warmup_epochs: int   # epochs of plain InfoNCE before RRSITR
    warmup_min_learned: float    # ...and until this share of last epoch's pairs is below g2

    def __post_init__(self):
        if not 0 < self.g1 < self.g2:
            raise NctoolError(f"loss.g1={self.g1}, loss.g2={self.g2}: need 0 < g1 < g2")
        _at_least("loss.reference_batch", self.reference_batch, 2)
        _positive("loss.logit_scale", self.logit_scale)
        _at_least("loss.infonce_warmup_epochs", self.infonce_warmup_epochs, 0)
        if not 0 <= self.warmup_min_learned <= 1:
            raise NctoolError(f"loss.warmup_min_learned={self.warmup_min_learned}: must be in [0, 1]")


@dataclass(frozen=True)
class TrainCfg:
    epochs: int
    batch_size: int         # per optimiser step, split over the processes under DDP
    lr: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float     # on parameters with >= 2 dims only
    warmup_steps: int
    grad_clip: float
    amp: bool               # bf16 autocast on CUDA
    amp_cpu: bool           # bf16 autocast on CPU
    seed: int
    drop_last: bool
    classes_per_batch: int = 0  # hard negatives: each batch holds pairs of about this many scene classes; 0: random

    def __post_init__(self):
        _at_least("train.epochs", self.epochs, 1)
        _at_least("train.classes_per_batch", self.classes_per_batch, 0)
        _at_least("train.batch_size", self.batch_size, 2)
        _positive("train.lr", self.lr)
        _positive("train.grad_clip", self.grad_clip)
        _at_least("train.warmup_steps", self.warmup_steps, 0)
        _at_least("train.seed", self.seed, 0)
        if self.weight_decay < 0:
            raise NctoolError(f"train.weight_decay={self.weight_decay}: must be at least 0")


@dataclass(frozen=True)
class EvalCfg:
    w_global: float         # retrieval score = w_global * global cosine + w_local * local similarity
    w_local: float
    batch_size: int

    def __post_init__(self):
        _at_least("eval.batch_size", self.batch_size, 1)


@dataclass(frozen=True)
class Recipe:
    model: ModelCfg
    loss: LossCfg
    train: TrainCfg
    eval: EvalCfg

    @classmethod
    def from_dict(cls, table: dict, source: str) -> "Recipe":
        """Build from a {section: {key: value}} table; refuses missing, unknown or mistyped keys."""
        if not isinstance(table, dict):
            raise NctoolError(f"{source}: not a recipe table; expected sections {', '.join(SECTIONS)}")
        unknown = [name for name in table if name not in SECTIONS]
        if unknown:
            raise NctoolError(f"{source}: unknown section [{unknown[0]}]; sections are {', '.join(SECTIONS)}")
        sections = {}
        for name, section_cls in SECTIONS.items():
            values = table.get(name)
            if not isinstance(values, dict):
                raise NctoolError(f"{source}: section [{name}] is missing; every recipe needs "
                                  f"{', '.join(f'[{s}]' for s in SECTIONS)} (see nctool/recipes/demo.toml)")
            expected = {f.name: f.type for f in fields(section_cls)}
            # a key added after checkpoints were written has a default: those checkpoints load with it
            optional = {f.name for f in fields(section_cls) if f.default is not dataclasses.MISSING}
            for key, value in values.items():
                if key not in expected:
                    raise NctoolError(f"{source}: unknown key {name}.{key}; known keys: {known_keys()}")
            missing = [key for key in expected if key not in values and key not in optional]
            if missing:
                raise NctoolError(f"{source}: key {name}.{missing[0]} is missing; add it "
                                  f"(nctool/recipes/demo.toml lists every key)")
            sections[name] = section_cls(**{key: _typed(f"{name}.{key}", values[key], expected[key])
                                             for key in expected if key in values})
        return cls(**sections)

    def to_dict(self) -> dict:
        """{section: {key: value}}: plain types only (what checkpoints and config.json store)."""
        return dataclasses.asdict(self)

    def with_values(self, values: dict[str, Any]) -> "Recipe":
        """A copy with `{"section.key": value}` set (typed values from CLI flags); None leaves a key as is."""
        table = self.to_dict()
        for key, value in values.items():
            if value is None:
                continue
            section, _, name = key.partition(".")
            if name not in table.get(section, {}):
                raise NctoolError(f"{key}: unknown recipe key; known keys: {known_keys()}")
            table[section][name] = value
        return Recipe.from_dict(table, "recipe")

    def with_overrides(self, overrides: list[str] | tuple = ()) -> "Recipe":
        """A copy with `section.key=value` strings applied (the value is parsed as TOML, else taken as text)."""
        return self.with_values(dict(_parse_override(item) for item in overrides))


SECTIONS = {"model": ModelCfg, "loss": LossCfg, "train": TrainCfg, "eval": EvalCfg}


def known_keys() -> str:
    return ", ".join(f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in fields(cls))


def _typed(key: str, value: Any, annotation: str) -> Any:
    """The value as the field's type (an int is a fine float); anything else is refused."""
    kind = {"str": str, "bool": bool, "int": int, "float": float}[annotation]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise NctoolError(f"{key}={value!r}: must be {'an' if kind is int else 'a'} {kind.__name__}")


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or "." not in key:
        raise NctoolError(f"override '{item}': write it as section.key=value, e.g. train.lr=1e-4")
    try:
        return key, tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return key, raw.strip()  # a bare word such as infonce: take it as text


def resolve_recipe_path(recipe: str | Path) -> Path:
    """A path, or the name of a recipe shipped in nctool/recipes/ (`demo`, `rsitmd`, ...)."""
    path = Path(recipe)
    if path.is_file():
        return path
    named = RECIPE_DIR / f"{recipe}.toml"
    if named.is_file():
        return named
    raise NctoolError(f"recipe '{recipe}' not found; give a TOML path or one of: {', '.join(shipped_recipes())}")


def shipped_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.toml"))


def load_recipe(recipe: str | Path, overrides: list[str] | tuple = ()) -> Recipe:
    """Read a recipe (following `extends`) and apply `section.key=value` overrides."""
    path = resolve_recipe_path(recipe)
    return Recipe.from_dict(_read_table(path, ()), str(path)).with_overrides(overrides)


def _read_table(path: Path, seen: tuple[Path, ...]) -> dict:
    """The recipe's table with its `extends` chain merged in (base first)."""
    if path.resolve() in seen:
        chain = " -> ".join(p.name for p in (*seen, path.resolve()))
        raise NctoolError(f"{path}: `extends` loops ({chain}); make the chain end at a recipe without extends")
    try:
        table = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NctoolError(f"{path}: not valid TOML ({exc})") from None
    base = table.pop("extends", None)
    if base is None:
        return table
    sibling = path.parent / f"{base}.toml"
    merged = _read_table(sibling if sibling.is_file() else resolve_recipe_path(base), (*seen, path.resolve()))
    for section, values in table.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section].update(values)
        else:
            merged[section] = values
    return merged
