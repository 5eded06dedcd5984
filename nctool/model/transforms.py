"""What turns a row into model input: the caption tokenizer and the image transforms.

Kept apart from the model (as open_clip's create_model_and_transforms does), so data code takes a
`Preprocess` and never the model. Train: RandomResizedCrop(S, scale 0.9-1.0, bicubic), drawn per
image from a given generator, no flip; eval: Resize(S, bicubic) + CenterCrop(S); then the model's
mean/std (docs/method.md, "Backbone").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import open_clip
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from nctool.model.clip import RetrievalModel

CROP_SCALE = (0.9, 1.0)               # RandomResizedCrop area range of the reference
CROP_LOG_RATIO = (math.log(3 / 4), math.log(4 / 3))  # torchvision's default aspect-ratio range


@dataclass(frozen=True)
class Preprocess:
    """The tokenizer (captions -> LongTensor [N, context_length]) and image transforms of a model."""

    tokenizer: Callable[[list[str]], torch.Tensor]
    image_size: int
    train: "ImageTransform"
    eval: "ImageTransform"


def preprocess_for(model: RetrievalModel) -> Preprocess:
    """The model's own preprocessing (open_clip's config for its image size, mean and std).

    Captions are tokenized as UTF-8 by CLIP's byte-level BPE, so no script is dropped (the reference
    strips non-ASCII first, which turns a Chinese or Arabic caption into an empty one).
    """
    config = open_clip.get_model_preprocess_cfg(model.clip)
    size = config["size"] if isinstance(config["size"], int) else config["size"][0]
    mean, std = tuple(config["mean"]), tuple(config["std"])
    return Preprocess(open_clip.get_tokenizer(model.model_name), size,
                      ImageTransform(size, mean, std, train=True), ImageTransform(size, mean, std, train=False))


class ImageTransform:
    """uint8 images [3,H,W] or [B,3,H,W] -> normalised float32 [..., 3, S, S].

    train: RandomResizedCrop(S, scale=(0.9, 1.0), bicubic), drawn per image, no flip;
    eval: Resize(S, bicubic) + CenterCrop(S). Then CLIP mean/std. Working on uint8 tensors keeps a
    batch of cached images cheap to prepare.
    """

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...], train: bool):
        self.size, self.train = size, train
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __call__(self, images: torch.Tensor,
                 generator: torch.Generator | Sequence[torch.Generator] | None = None) -> torch.Tensor:
        """Crop (randomly when training: from `generator`, or one generator per image) and normalise."""
        batch = images if images.ndim == 4 else images.unsqueeze(0)
        if self.train:
            per_image = generator if isinstance(generator, Sequence) else [generator] * len(batch)
            batch = torch.stack([self._random_resized_crop(image, gen) for image, gen in zip(batch, per_image)])
        else:
            batch = TF.center_crop(TF.resize(batch, self.size, InterpolationMode.BICUBIC, antialias=True), self.size)
        batch = (batch.float() / 255 - self.mean) / self.std
        return batch if images.ndim == 4 else batch[0]

    def _random_resized_crop(self, image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        # torchvision's RandomResizedCrop sampling, drawn from `generator` so a run is reproducible
        height, width = image.shape[-2:]
        top, left, crop_h, crop_w = 0, 0, height, width  # fallback: the whole image
        for _ in range(10):
            area = height * width * _uniform(*CROP_SCALE, generator)
            ratio = math.exp(_uniform(*CROP_LOG_RATIO, generator))
            w, h = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
                crop_h, crop_w = h, w
                break
        return TF.resized_crop(image, top, left, crop_h, crop_w, [self.size, self.size],
                               InterpolationMode.BICUBIC, antialias=True)


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))

