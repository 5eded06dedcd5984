"""open_clip models for image-text retrieval: global and local (token-level) embeddings.

RRSITR scores a pair with CLIP's own joint space (docs/method.md, "Backbone"):
- global: image class token -> ln_post -> proj; text end-of-text token -> ln_final -> text_projection;
- local: every image patch token -> ln_post -> proj, every text position -> ln_final -> text_projection;
  local(text, image) = ||C||_F, the Frobenius norm of the cosine matrix between text tokens and
  image patches.
All embeddings are L2-normalised. nctool's own small configs live in `nctool/model/configs/` and are
registered with open_clip when this module is imported.
"""

from __future__ import annotations

import copy
import logging
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

import open_clip
import torch
import torch.nn.functional as F
from open_clip.factory import load_state_dict as read_open_clip_state_dict
from open_clip.transformer import TextTransformer, VisionTransformer
from torch import nn

from nctool.config import Recipe
from nctool.errors import NctoolError
from nctool.model.checkpoint import (
    checkpoint_recipe,
    is_checkpoint,
    load_trained_weights,
    load_weights,
    quiet_pickle_protocol,
    read_checkpoint,
)

CONFIG_DIR = Path(__file__).parent / "configs"
open_clip.add_model_config(CONFIG_DIR)

GRAM_BUDGET_BYTES = 2**28             # per side of local_similarity's chunked Gram matmul


def create_model(name: str = "ViT-B-32", pretrained: str | Path | None = None, *,
                 mask_padding: bool = False) -> "RetrievalModel":
    """Build an open_clip model for retrieval.

    `pretrained`: None (or "") for random init; an open_clip tag such as "openai" (needs the network
    or a filled Hugging Face cache); a local checkpoint (.safetensors/.pt/.pth/.bin) holding an
    open_clip state dict, e.g. RemoteCLIP or GeoRSCLIP weights; or a checkpoint written by
    `nctool train` (best.pt, last.pt) of a model trained as `name`, to fine-tune from an earlier run.
    See RetrievalModel for `mask_padding`.
    """
    known = open_clip.list_models()
    if name not in known:
        examples = [n for n in ("nctool-tiny", "ViT-B-32", "ViT-B-16", "ViT-L-14") if n in known]
        raise NctoolError(f"model '{name}': unknown; available are e.g. {', '.join(examples)} "
                          f"({len(known)} in all, see open_clip.list_models())")
    pretrained = str(pretrained) if pretrained else None
    from_tag = bool(pretrained and open_clip.get_pretrained_cfg(name, pretrained))
    if from_tag:
        clip = _create_from_tag(name, pretrained)
    else:
        with quiet_random_init() if pretrained else nullcontext():  # the file's weights are loaded below
            clip = open_clip.create_model(name, pretrained=None)
    model = RetrievalModel(clip, name, pretrained, mask_padding=mask_padding)
    if pretrained and not from_tag:
        _load_checkpoint(model, Path(pretrained))
    return model


def load_trained_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[RetrievalModel, Recipe, dict]:
    """Rebuild the model a checkpoint was trained with; returns (model in eval mode, recipe, payload)."""
    payload = read_checkpoint(path)
    recipe = checkpoint_recipe(payload, path)
    with quiet_random_init():  # its weights are loaded next
        model = create_model(recipe.model.name, pretrained=None, mask_padding=recipe.model.mask_padding)
    load_weights(model, payload["model"], path)
    return model.to(device).eval(), recipe, payload


class _RandomInitNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded")


@contextmanager
def quiet_random_init() -> Iterator[None]:
    """Drop open_clip's "No pretrained weights loaded ... initialized randomly" notice (it logs it on the
    root logger) while building a model whose weights are loaded right after."""
    notice = _RandomInitNotice()
    logging.getLogger().addFilter(notice)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(notice)


def _create_from_tag(name: str, tag: str) -> nn.Module:
    try:
        return open_clip.create_model(name, pretrained=tag)
    except Exception as exc:  # download failures surface as several exception types
        raise NctoolError(f"pretrained '{tag}' for {name}: the weights could not be fetched "
                          f"({exc.__class__.__name__}; offline?); download the open_clip checkpoint on a "
                          f"machine with network and give its local path (.safetensors/.pt/.bin) instead") from None


def _load_checkpoint(model: RetrievalModel, path: Path) -> None:
    """Load an open_clip checkpoint, or an nctool one, into the model; one line when it does not fit."""
    name = model.model_name
    if not path.is_file():
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(name)[:5]) or "none"
        raise NctoolError(f"pretrained '{path}': no such checkpoint file, nor a pretrained tag of {name} "
                          f"(tags: {tags}); give the path of an open_clip or nctool checkpoint, "
                          f"or nothing for random init")
    try:
        # open_clip's loader also converts third-party layouts and resizes position embeddings
        with quiet_pickle_protocol():
            open_clip.load_checkpoint(model.clip, str(path), strict=True)
        return
    except Exception as exc:
        error = exc
    try:
        with quiet_pickle_protocol():
            found = read_open_clip_state_dict(str(path))
    except Exception as exc:
        raise NctoolError(f"{path}: not a readable checkpoint ({exc.__class__.__name__}); give an open_clip "
                          f"state dict saved as .safetensors, .pt or .bin") from None
    if is_checkpoint(found):  # written by `nctool train`: read the safe way, with its recipe
        load_trained_weights(model, path)
        return
    mismatch = (_first_mismatch(model.clip.state_dict(), found)
                or f"{error.__class__.__name__}: {str(error).splitlines()[0]}")
    raise NctoolError(f"{path}: does not fit model {name}: {mismatch}; give a checkpoint of {name} "
                      f"or choose the model the checkpoint was trained as") from None


def _first_mismatch(expected: dict, found: dict) -> str | None:
    for key, tensor in expected.items():
        if key not in found:
            return f"key '{key}' is missing from the file"
        if tuple(found[key].shape) != tuple(tensor.shape):
            return f"'{key}' has shape {list(found[key].shape)} in the file, {list(tensor.shape)} in the model"
    extra = next((key for key in found if key not in expected), None)
    return f"unexpected key '{extra}' in the file" if extra else None


def _local_support_problem(clip: nn.Module) -> str | None:
    """Why this open_clip model cannot give local features, or None when it can."""
    visual = clip.visual
    if not (isinstance(visual, VisionTransformer) and visual.attn_pool is None
            and visual.pool_type in ("tok", "avg") and visual.proj is not None):
        return f"its image tower ({type(visual).__name__}) has no projected patch tokens"
    text = getattr(clip, "text", clip)  # CLIP keeps the text tower's parts on itself
    if not (isinstance(text, (open_clip.CLIP, TextTransformer)) and getattr(text, "cls_emb", None) is None
            and text.text_projection is not None):
        return f"its text tower ({type(text).__name__}) has no projected token outputs"
    return None


def _project(x: torch.Tensor, projection: nn.Parameter | nn.Linear) -> torch.Tensor:
    return projection(x) if isinstance(projection, nn.Linear) else x @ projection


class RetrievalModel(nn.Module):
    """An open_clip model (`.clip`) with the global and local embeddings RRSITR uses.

    `mask_padding`: False (the reference) lets all T text positions, padding included, take part
    in the local similarity; True returns padding positions of the text local embedding as zero
    vectors, so they drop out of every local similarity computed from it.
    `state_dict()` keys carry a "clip." prefix; `clip.state_dict()` is a plain open_clip state dict
    that `create_model(name, pretrained=path)` loads back.
    """

    def __init__(self, clip: nn.Module, model_name: str, pretrained: str | None = None, mask_padding: bool = False):
        super().__init__()
        self.clip = clip
        self.model_name = model_name
        self.pretrained = pretrained
        self.mask_padding = mask_padding
        self._local_problem = _local_support_problem(clip)
        # the method fixes the temperature, so CLIP's own logit scale/bias take no part: freezing
        # them keeps DDP from waiting on gradients that never come
        for name, parameter in clip.named_parameters():
            if name in ("logit_scale", "logit_bias"):
                parameter.requires_grad_(False)

    def _require_local(self) -> None:
        if self._local_problem:
            raise NctoolError(f"model {self.model_name}: {self._local_problem}, which local features need; "
                              f"use a standard CLIP ViT config (e.g. ViT-B-32, nctool-tiny) or global features only")

    def encode_image(self, images: torch.Tensor, local: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Normalised images [B,3,S,S] -> (global [B,D], local [B,P,D] or None), L2-normalised."""
        if not local:
            return F.normalize(self.clip.encode_image(images), dim=-1), None
        self._require_local()
        # the last block's tokens with ln_post applied, and open_clip's own pooled, projected output
        out = self.clip.forward_intermediates(image=images, image_indices=1, normalize_intermediates=True,
                                              image_output_fmt="NLC")
        patches = _project(out["image_intermediates"][-1], self.clip.visual.proj)
        return out["image_features"], F.normalize(patches, dim=-1)

    def encode_text(self, tokens: torch.Tensor, local: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Tokens [B,T] -> (global [B,D], local [B,T,D] or None), L2-normalised.

        Global is the end-of-text token's output (open_clip's pooled feature); local holds every
        position, with padding zeroed when `mask_padding` is set.
        """
        if not local:
            return F.normalize(self.clip.encode_text(tokens), dim=-1), None
        self._require_local()
        out = self.clip.forward_intermediates(text=tokens, text_indices=1, normalize_intermediates=True)
        text_tower = getattr(self.clip, "text", self.clip)
        local_tokens = F.normalize(_project(out["text_intermediates"][-1], text_tower.text_projection), dim=-1)
        if self.mask_padding:
            # end-of-text is the largest id of CLIP's BPE, so argmax finds it (as open_clip's pooling
            # does); `tokens != 0` would not do: id 0 is a real BPE token ("!")
            positions = torch.arange(tokens.shape[1], device=tokens.device)
            local_tokens = local_tokens * (positions <= tokens.argmax(dim=1, keepdim=True)).unsqueeze(-1)
        return out["text_features"], local_tokens

    def forward(self, images: torch.Tensor, tokens: torch.Tensor):
        """Both towers in one call, so that a DDP wrapper sees one forward.

        Returns (image global, image local, text global, text local).
        """
        return (*self.encode_image(images), *self.encode_text(tokens))


def local_similarity(text_local: torch.Tensor | LocalGrams, image_local: torch.Tensor | LocalGrams) -> torch.Tensor:
    """Local similarity [Nt, Ni] (text rows, image columns): ||C||_F with C[b,e] = text token b . image patch e.

    Inputs are L2-normalised tokens, text [Nt,T,D] and image [Ni,P,D] (padding positions arrive
    zeroed when the model masks them, RetrievalModel.mask_padding), or either side's precomputed
    `LocalGrams` (bit-identical result). Unscaled (training multiplies by s = exp(2.996)). Uses
    ||T P^T||_F^2 = <T^T T, P^T P>_F: per item a DxD Gram matrix, then one matmul of packed Grams
    (_gram_chunks), which costs D(D+1)/2 per pair instead of T*P*D. Chunked so that Grams of at
    most GRAM_BUDGET_BYTES per side exist at a time (beyond a LocalGrams side, held whole); computed
    in float32 (under autocast too) on the inputs' device.
    """
    device = text_local.device
    with torch.autocast(device.type, enabled=False):
        rows = [torch.cat([text_grams @ image_grams.T for image_grams in _gram_chunks(image_local)], dim=1)
                for text_grams in _gram_chunks(text_local)]
        # clamp: rounding can make a tiny squared norm negative, and sqrt'(0) is infinite
        return torch.cat(rows).clamp_min(1e-12).sqrt()


class LocalGrams:
    """The packed float32 DxD Grams of a token set [N,T,D], in local_similarity's chunks.

    For a side that local_similarity meets many times (scoring's reference pool, nctool.detect.score):
    computed once, then passed to local_similarity in place of the tokens, with exactly the same
    result (the same ops on the same chunks). It holds N*D*(D+1)/2*4 bytes, all of them at once:
    0.5 MB per item at D = 512 (ViT-B/32), so 1000 items take 0.5 GB; callers check `nbytes`
    against a budget.
    """

    def __init__(self, tokens: torch.Tensor):
        self.device, self.dim = tokens.device, tokens.shape[-1]
        with torch.autocast(tokens.device.type, enabled=False):
            self.chunks = list(_gram_chunks(tokens))
        self.length = len(tokens)

    def __len__(self) -> int:
        return self.length

    def to(self, device: torch.device | str) -> "LocalGrams":
        moved = copy.copy(self)
        moved.chunks, moved.device = [chunk.to(device) for chunk in self.chunks], torch.device(device)
        return moved

    @staticmethod
    def nbytes(tokens: torch.Tensor) -> int:
        """Bytes the Grams of `tokens` [N,T,D] take: N * D * (D+1) / 2 * 4."""
        dim = tokens.shape[-1]
        return len(tokens) * dim * (dim + 1) // 2 * 4


def _gram_chunks(side: torch.Tensor | LocalGrams):
    """Packed Grams [n, D*(D+1)/2] of consecutive chunks of at most GRAM_BUDGET_BYTES: the one home of the Gram math.

    A Gram is symmetric, so <A, B>_F = sum of diagonal products + 2 * sum of upper-triangle products:
    each side keeps its diagonal and sqrt(2) times its upper triangle, and the Frobenius product
    of two Grams is one dot product of half the length (half the matmul of the full D*D Grams).
    """
    if isinstance(side, LocalGrams):
        yield from side.chunks
        return
    dim = side.shape[-1]
    rows, cols = torch.triu_indices(dim, dim, device=side.device)
    flat = rows * dim + cols
    weight = torch.where(rows == cols, 1.0, 2.0 ** 0.5).to(side.device)
    chunk = max(1, GRAM_BUDGET_BYTES // (4 * dim ** 2))
    for start in range(0, len(side), chunk):
        tokens = side[start:start + chunk].float()
        yield (tokens.transpose(1, 2) @ tokens).flatten(1)[:, flat] * weight


def pair_scores(image_global: torch.Tensor, image_local: torch.Tensor, text_global: torch.Tensor,
                text_local: torch.Tensor, *, w_global: float = 0.9, w_local: float = 0.1) -> torch.Tensor:
    """Evaluation scores [Ni, Nt] = w_global * global cosine + w_local * local similarity (s = 1)."""
    scores = w_global * (image_global.float() @ text_global.float().T)
    if w_local:
        scores += w_local * local_similarity(text_local, image_local).T
    return scores
