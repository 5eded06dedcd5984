"""Recipes: TOML files holding every training hyperparameter, with overrides.

A recipe is a two-level table (`[model]`, `[loss]`, `[train]`, `[eval]`). `extends = "NAME"`
starts from another recipe in the same folder. Overrides are `section.key=value` strings whose
value is parsed as TOML (so `train.lr=1e-4`, `model.pretrained="/ckpt.safetensors"`); a key the
recipe does not have is refused, so a typo never passes silently.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from nctool.errors import NctoolError

RECIPE_DIR = Path(__file__).resolve().parent.parent / "recipes"


def resolve_recipe_path(recipe: str | Path) -> Path:
    """A path, or the name of a recipe shipped in recipes/ (`demo`, `rsitmd`, ...)."""
    path = Path(recipe)
    if path.exists():
        return path
    named = RECIPE_DIR / f"{recipe}.toml"
    if named.exists():
        return named
    shipped = sorted(p.stem for p in RECIPE_DIR.glob("*.toml"))
    raise NctoolError(f"recipe '{recipe}' not found; give a TOML path or one of: {', '.join(shipped)}")


def load_recipe(recipe: str | Path, overrides: list[str] | tuple = ()) -> dict:
    """Read a recipe (following `extends`) and apply `section.key=value` overrides."""
    path = resolve_recipe_path(recipe)
    try:
        config = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise NctoolError(f"{path}: not valid TOML ({exc})") from None
    base = config.pop("extends", None)
    if base is not None:
        merged = load_recipe(path.parent / f"{base}.toml" if (path.parent / f"{base}.toml").exists() else base)
        for section, values in config.items():
            merged.setdefault(section, {}).update(values)
        config = merged
    for item in overrides:
        apply_override(config, item)
    return config


def apply_override(config: dict, item: str) -> None:
    key, sep, raw = item.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot:
        raise NctoolError(f"override '{item}': write it as section.key=value, e.g. train.lr=1e-4")
    if section not in config or name not in config[section]:
        known = ", ".join(f"{s}.{k}" for s, v in config.items() if isinstance(v, dict) for k in v)
        raise NctoolError(f"override '{item}': unknown key '{key}'; known keys: {known}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word such as infonce or a path: take it as a string
    old = config[section][name]
    if isinstance(old, bool) != isinstance(value, bool) or (
            isinstance(old, (int, float)) and not isinstance(value, (int, float))):
        raise NctoolError(f"override '{item}': {key} must be a {type(old).__name__}, got '{raw.strip()}'")
    config[section][name] = float(value) if isinstance(old, float) else value
