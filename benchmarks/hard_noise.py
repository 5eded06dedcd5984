"""Can a model tell an image's own captions from captions of other images of its scene class? (issue 19)

Hard noise (a caption of another image of the same category) can only be caught by a model that
sees the details the captions name (counts, colours, positions). This measures that on clean data,
before any detector: for each image, its captions against every caption of its class (its own
included), by the model's global cosine.

- within-class R@1: how often the image's best caption of its class is one of its own (chance:
  its captions over the class's captions);
- within-class AUROC: own captions against the class's other captions, over all images' pairs.

    .venv/bin/python benchmarks/hard_noise.py DATA CHECKPOINT [CHECKPOINT ...] [--split test]
    .venv/bin/python benchmarks/hard_noise.py DATA CHECKPOINT --detect [--kind category --rate 0.4 --seed 42 ...]

DATA is a clean dataset with `category` (e.g. `nctool synth`'s); each CHECKPOINT an `nctool train`
best.pt (or an nctool checkpoint the demo's base wrote). With `--detect`, DATA's train split is noised
(each kind, rate and noise seed) and every detector scores it zero-shot with CHECKPOINT as the
`finetune` recipe's model (`nctool score --model NAME --pretrained CHECKPOINT`, random decoys); prints the
detection AUROC of each detector per cell.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from nctool.data.images import resolve_root
from nctool.detect.measure import ModelSource
from nctool.metrics import detection_metrics
from nctool.model.batches import PairData, encode_dataset
from nctool.model.transforms import preprocess_for
from nctool.schema import read_table


def within_class(similarity: np.ndarray, caption_image: np.ndarray, image_class: np.ndarray) -> dict:
    """Within-class R@1, its chance, and AUROC of own against same-class captions.

    `similarity` [images, captions]; `caption_image` [captions] the image of each caption;
    `image_class` [images] each image's class.
    """
    caption_class = image_class[caption_image]
    hits, chance, own_scores, other_scores = [], [], [], []
    for image in range(len(similarity)):
        same = np.flatnonzero(caption_class == image_class[image])
        own = caption_image[same] == image
        scores = similarity[image, same]
        hits.append(own[np.argmax(scores)])
        chance.append(own.mean())
        own_scores.append(scores[own])
        other_scores.append(scores[~own])
    own_scores, other_scores = np.concatenate(own_scores), np.concatenate(other_scores)
    truth = np.r_[np.ones(len(own_scores), bool), np.zeros(len(other_scores), bool)]
    return {"within-class R@1": float(np.mean(hits)), "chance": float(np.mean(chance)),
            "within-class AUROC": detection_metrics(truth, np.r_[own_scores, other_scores])["auroc"]}


def measure(data_path: Path, checkpoint: Path, split: str) -> dict:
    frame = read_table(data_path)
    frame = frame[frame["split"] == split].reset_index(drop=True)
    model, _ = ModelSource(checkpoint=checkpoint).load("cpu")
    data = PairData(frame, resolve_root(data_path, None), preprocess_for(model))
    encoded = encode_dataset(model, data, local=False)
    similarity = (encoded.image_global @ encoded.text_global.T).numpy()
    first_row = frame.drop_duplicates("image_id").set_index("image_id")
    image_class = first_row.loc[encoded.image_ids, "category"].to_numpy()
    caption_image = encoded.caption_image_index.numpy()
    return {"checkpoint": str(checkpoint), "images": len(encoded.image_ids),
            **within_class(similarity, caption_image, image_class)}


def detect(data_path: Path, checkpoint: Path, kinds: list[str], rates: list[float], seeds: list[int]) -> None:
    import tempfile

    import pandas as pd

    from nctool.data.noise import inject
    from nctool.detect.measure import ModelSource
    from nctool.detect.score import score
    from nctool.schema import write_table

    clean, rows = read_table(data_path), []
    from nctool.model.checkpoint import read_checkpoint

    name = read_checkpoint(checkpoint)["config"]["model"]["name"]  # nctool-tiny, nctool-tiny-128, ...
    model = ModelSource(model=name, pretrained=str(checkpoint), recipe="finetune")
    with tempfile.TemporaryDirectory() as folder:
        for kind in kinds:
            for rate in rates:
                for seed in seeds:
                    noisy = write_table(inject(clean, rate, kind, seed=seed)[0], Path(folder) / "noisy.parquet")
                    result = score(noisy, out=Path(folder) / "scores.parquet", model=model, detectors=["all"],
                                   options={"scene_decoys": False})
                    rows.append({"kind": kind, "rate": rate, "seed": seed,
                                 **{row["detector"]: row["auroc"] for row in result["detectors"]}})
                    print(rows[-1], flush=True)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda value: f"{value:.3f}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--split", default="test")
    parser.add_argument("--detect", action="store_true")
    parser.add_argument("--kind", action="append")
    parser.add_argument("--rate", type=float, action="append")
    parser.add_argument("--seed", type=int, action="append")
    args = parser.parse_args()
    if args.detect:
        for checkpoint in args.checkpoints:
            detect(args.data, checkpoint, args.kind or ["category"], args.rate or [0.2, 0.4, 0.6], args.seed or [42])
        return
    torch.set_grad_enabled(False)
    for checkpoint in args.checkpoints:
        row = measure(args.data, checkpoint, args.split)
        print(" | ".join(f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}"
                         for key, value in row.items()), flush=True)


if __name__ == "__main__":
    main()
