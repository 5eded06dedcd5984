"""Repair accuracy of `nctool score --suggest K` on data with injected noise (ground truth needed).

Usage: .venv/bin/python benchmarks/repair.py DATA CHECKPOINT [--k 5] [--detector rrsitr ...] [--out FOLDER]
       [--tagger TAGGER]

DATA holds `noisy` and `caption_source` (from `nctool inject`) and `category`; CHECKPOINT is a model
trained on it.
A truly noisy scored pair is repaired at top-n when one of its first n suggested captions was
originally written for its image: the suggested row's `caption_source` is a pair of the flagged
pair's image_id. Two scoring runs, each a plain `score` call:
- every pair flagged (`--detector similarity --threshold 1`: every cosine is below 1): the
  suggestions alone, over all noisy pairs;
- flagged by the chosen detectors (`--detector`, default rrsitr): end to end, where a noisy pair
  the detectors leave clean gets no suggestion and counts as not repaired.
Chance: the same measure for K captions drawn uniformly at random (without replacement) from the
candidates, computed exactly: with M candidates of which c were written for the image,
P(top-n hit) = 1 - C(M - c, n) / C(M, n).
The image side is measured too: a noisy pair's caption is placed at top-n when the image it was
written for is among the first n suggested images (chance: n / (scored images - 1)). And, coarser,
`category top-1`: the top-1 suggested caption was written for an image of the pair's category.
With `--tagger` (a word tagger, `nctool train-tagger`) both runs also score with `attributes --tagger`,
so the suggestions are re-ranked by the tagger's reading of the flagged image too.
"""

import argparse
import tempfile
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd

from nctool.detect.detectors import detector_names
from nctool.detect.measure import ModelSource
from nctool.detect.score import score
from nctool.schema import read_table


def repair_table(data: pd.DataFrame, scores: pd.DataFrame, *, k: int) -> dict:
    """Top-1 and top-k repair of the noisy scored pairs (captions for the image, images for the caption),
    their chance values, and how many of those pairs were flagged."""
    rows = data.set_index("pair_id")
    rows["source_image"] = rows["caption_source"].map(rows["image_id"])  # the image each caption was written for
    rows["source_category"] = rows["caption_source"].map(rows["category"])
    suggested = scores.drop_duplicates("pair_id").set_index("pair_id")
    fixes = suggested["suggested_pair_ids"]
    scored = rows.loc[fixes.index]
    on_image = scored["image_id"].value_counts()
    # candidates for a pair of image I: the scored rows of other images; good ones: those with a caption of I
    written_for = scored.loc[scored["image_id"] != scored["source_image"], "source_image"].value_counts()
    hits, chance, image_hits, category_hits = {1: [], k: []}, {1: [], k: []}, {1: [], k: []}, []
    for pair_id, pair in scored[scored["noisy"]].iterrows():
        captions, images = suggested.loc[pair_id, ["suggested_pair_ids", "suggested_image_ids"]]
        found = [] if captions is None else (rows.loc[list(captions), "source_image"] == pair["image_id"]).tolist()
        category_hits.append(captions is not None and rows.loc[captions[0], "source_category"] == pair["category"])
        candidates, good = len(scored) - on_image[pair["image_id"]], written_for.get(pair["image_id"], 0)
        for n in hits:
            hits[n].append(any(found[:n]))
            chance[n].append(1 - comb(candidates - good, n) / comb(candidates, n))
            image_hits[n].append(images is not None and pair["source_image"] in list(images[:n]))
    return {"noisy pairs": len(hits[1]), "flagged": int(fixes.loc[scored["noisy"]].notna().sum()),
            **{f"{prefix}top-{n}": np.mean(values[n]) for prefix, values in
               (("", hits), ("chance ", chance), ("image ", image_hits)) for n in values},
            **{f"image chance top-{n}": n / (len(on_image) - 1) for n in hits},
            "category top-1": np.mean(category_hits)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("checkpoint")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--detector", action="append", default=None, choices=[*detector_names(), "all"])
    parser.add_argument("--out", default=None, help="folder for the two scores files (default: a temp folder)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--tagger", default=None)
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="repair-"))
    data = read_table(args.data, columns=["pair_id", "image_id", "category", "noisy", "caption_source"])
    runs = {"every pair flagged": (["similarity"], {"threshold": 1.0}),
            f"flagged by {', '.join(args.detector or ['rrsitr'])}": (args.detector or ["rrsitr"], {})}
    if args.tagger:  # the tagger is read where a chosen detector needs it
        runs = {name: ([*detectors, "attributes"], {**options, "tagger": args.tagger})
                for name, (detectors, options) in runs.items()}
    measures = [f"{prefix}top-{n}" for prefix in ("", "chance ", "image ", "image chance ") for n in (1, args.k)]
    measures.append("category top-1")
    print("| flagging | noisy pairs | flagged | " + " | ".join(measures) + " |")
    print("|---" * (3 + len(measures)) + "|")
    for i, (name, (detectors, options)) in enumerate(runs.items()):
        path = out / f"scores{i}.parquet"
        score(args.data, model=ModelSource(checkpoint=args.checkpoint), out=path, detectors=detectors,
              options=options, suggest=args.k,
              device=args.device)
        row = repair_table(data, pd.read_parquet(path), k=args.k)
        print(f"| {name} | {row['noisy pairs']} | {row['flagged']} | "
              + " | ".join(f"{100 * row[key]:.1f} %" for key in measures) + " |")
    print(f"scores files in {out}")


if __name__ == "__main__":
    main()
