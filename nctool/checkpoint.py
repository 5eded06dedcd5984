"""Checkpoints: atomic save, and rebuilding a trained model from one."""

from __future__ import annotations

from pathlib import Path

import torch

from nctool.errors import NctoolError
from nctool.model import create_model
from nctool.schema import atomic_path


def save_checkpoint(payload: dict, dest: str | Path) -> Path:
    """torch.save to a temp file, then rename: a crash never leaves a half-written checkpoint."""
    with atomic_path(dest) as tmp:
        torch.save(payload, tmp)
    return Path(dest)


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise NctoolError(f"{path}: checkpoint not found; train one with `nctool train` (runs/NAME/best.pt)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise NctoolError(f"{path}: not a readable nctool checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(payload, dict) or "model" not in payload or "config" not in payload:
        raise NctoolError(f"{path}: not an nctool checkpoint (no model/config); use runs/NAME/best.pt or last.pt")
    return payload


def load_trained_model(path: str | Path, device: torch.device | str = "cpu"):
    """Rebuild the model a checkpoint was trained with; returns (model, config, payload)."""
    payload = read_checkpoint(path)
    cfg = payload["config"]
    model = create_model(cfg["model"]["name"], pretrained=None, mask_padding=cfg["model"]["mask_padding"])
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), cfg, payload
