"""Checkpoints: atomic save, safe load, and loading their weights into a model.

A checkpoint holds only tensors, numbers, strings, lists and dicts (the recipe as a plain table),
so it loads with `torch.load(weights_only=True)`: opening a checkpoint someone sent never runs
code from it.

This module knows the file, not the model: it loads weights into any model that has `model_name`
and `load_state_dict` (nctool.model.clip.RetrievalModel), and nctool.model.clip builds on it.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from nctool.config import Recipe
from nctool.errors import NctoolError
from nctool.schema import atomic_path

TAGGER_KEY = "word_tagger"  # the entry that marks a word tagger's file (nctool.model.tagger)


def save_checkpoint(payload: dict, dest: str | Path) -> Path:
    """torch.save to a temp file, then rename: a crash never leaves a half-written checkpoint."""
    with atomic_path(dest) as tmp:
        torch.save(payload, tmp)
    return Path(dest)


def read_checkpoint(path: str | Path, *, mmap: bool = False) -> dict:
    """The payload of an nctool checkpoint, loaded without running any code stored in the file; with `mmap`,
    its tensors are mapped from the file rather than read (to look at its other entries)."""
    path = Path(path)
    if not path.is_file():
        raise NctoolError(f"{path}: checkpoint not found; train one with `nctool train` (runs/NAME/best.pt)")
    payload = load_payload(path, mmap=mmap, fix="use a checkpoint written by `nctool train`")
    if isinstance(payload, dict) and TAGGER_KEY in payload:
        raise NctoolError(f"{path}: a word tagger, not a retrieval model; give it to `nctool score` as --tagger, "
                          "and runs/NAME/best.pt as --checkpoint")
    if not is_checkpoint(payload):
        raise NctoolError(f"{path}: not an nctool checkpoint (no model/config); use runs/NAME/best.pt or last.pt")
    return payload


def load_payload(path: Path, *, fix: str, mmap: bool = False) -> object:
    """torch.load(weights_only=True) of an existing file, refused in one line ending in `fix` when it is not a
    checkpoint at all or would need to run code stored in it."""
    try:
        with quiet_pickle_protocol():
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # unpickling refusals and corrupt files surface as several types
        with open(path, "rb") as file:
            parquet = file.read(4) == b"PAR1"
        reason = "it is a Parquet file: a dataset or scores, not a checkpoint" if parquet else \
            "it stores Python objects beyond tensors, numbers and text, which could run code" \
            if "weights only" in str(exc).lower() else f"not a checkpoint file: {exc.__class__.__name__}"
        raise NctoolError(f"{path}: not loaded ({reason}); {fix}") from None


@contextmanager
def quiet_pickle_protocol() -> Iterator[None]:
    """Drop torch's two-line warning on a pickle of another protocol (e.g. 4): the refusal that follows says it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        yield


def is_checkpoint(payload: object) -> bool:
    """Whether a loaded file is an nctool checkpoint (a dict with the model's weights and its recipe)."""
    return isinstance(payload, dict) and "model" in payload and "config" in payload


def checkpoint_recipe(payload: dict, path: str | Path) -> Recipe:
    """The recipe a checkpoint was trained with; refuses a config that is not a full recipe."""
    return Recipe.from_dict(payload["config"], f"{path} (its config)")


def load_trained_weights(model: nn.Module, path: str | Path) -> None:
    """Load the weights of checkpoint `path` into `model`; refused unless it was trained as the same model."""
    payload = read_checkpoint(path)
    trained = checkpoint_recipe(payload, path).model.name
    if trained != model.model_name:
        raise NctoolError(f"{path}: an nctool checkpoint of model {trained}, not {model.model_name}; choose model "
                          f"{trained} (the model it was trained as) or a checkpoint of {model.model_name}")
    load_weights(model, payload["model"], path)


def load_weights(model: nn.Module, state: dict, path: str | Path) -> None:
    """load_state_dict with a one-line error when the weights are not of this model's config."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).splitlines()[1 if str(exc).count("\n") else 0].strip()
        raise NctoolError(f"{path}: its weights do not fit model {model.model_name} ({first}); the checkpoint "
                          f"is damaged or its config was edited") from None
