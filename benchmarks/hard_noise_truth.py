"""How much of the injected hard noise is wrong at all? (issue 19)

Category noise moves a caption to another image of the same scene class. Synthetic scenes of one
class often share facts ("a calm blue sea at the bottom"), so a moved caption is sometimes true of
its new image: no judge, human or model, should flag it, and it caps every detector's AUROC against
the injected ground truth. This counts those captions with the caption writer's inverse
(`nctool.data.synth.true_of_image`) and, given a scores file, gives each detector's AUROC twice:
against the injected truth, and against the captions that are really wrong (the true ones left out).

    .venv/bin/python benchmarks/hard_noise_truth.py NOISY [NOISY ...] [--scores SCORES ...] [--synth-seed 3]

NOISY: `nctool inject` output made from `nctool synth` data (the demo's is synth seed 3, 64 px); SCORES:
`nctool score` output for the NOISY at the same position. Train split only, as the detectors score it.
Ceiling: the AUROC of a perfect judge of truth against the injected truth, the true captions tied
with the clean ones (1 - share / 2).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from nctool.curate.filtering import read_scores
from nctool.data.synth import true_of_image
from nctool.metrics import detection_metrics
from nctool.schema import read_table


def truly_wrong(noisy: pd.DataFrame, *, seed: int, size: int) -> np.ndarray:
    """Per train row: injected as noise and not true of its image (clean rows: False)."""
    index = noisy["image_id"].str.rsplit("/", n=1).str[-1].astype(int).to_numpy()
    injected = noisy["noisy"].to_numpy(bool)
    probe = np.flatnonzero(~injected)[:50]  # the clean captions must all read as true, or the seed is wrong
    if not all(true_of_image(noisy["caption"].iat[i], index[i], size=size, seed=seed) for i in probe):
        sys.exit(f"the clean captions are not true of synth seed {seed} at {size} px: pass the --synth-seed and "
                 "--size the data was made with")
    return np.array([bool(bad) and not true_of_image(c, i, size=size, seed=seed)
                     for c, i, bad in zip(noisy["caption"], index, injected)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("noisy", nargs="+")
    parser.add_argument("--scores", nargs="*", default=[])
    parser.add_argument("--synth-seed", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    if args.scores and len(args.scores) != len(args.noisy):
        sys.exit("give one --scores file per NOISY file, in the same order")
    for k, path in enumerate(args.noisy):
        data = read_table(path, columns=["pair_id", "image_id", "caption", "split", "noisy"])
        data = data[data["split"] == "train"].reset_index(drop=True)
        injected = data["noisy"].to_numpy(bool)
        wrong = truly_wrong(data, seed=args.synth_seed, size=args.size)
        share = 1 - wrong.sum() / injected.sum()
        line = (f"{path}: {injected.sum()} injected, {share:.1%} true of their new image, "
                f"ceiling AUROC {1 - share / 2:.3f}")
        if args.scores:
            scores = read_scores(args.scores[k])
            kept = ~injected | wrong
            cells = []
            for detector, rows in scores.groupby("detector", sort=False):
                noise = -rows.set_index("pair_id").loc[data["pair_id"], "reliability"].to_numpy()
                cells.append(f"{detector} {detection_metrics(injected, noise)['auroc']:.3f}"
                             f"/{detection_metrics(wrong[kept], noise[kept])['auroc']:.3f}")
            line += "; AUROC injected/wrong: " + ", ".join(cells)
        print(line, flush=True)


if __name__ == "__main__":
    main()
