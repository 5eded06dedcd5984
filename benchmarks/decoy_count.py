"""Would more decoys per pair pin the noise share closer? (issue 17; tried, not adopted)

    nctool inject CLEAN --kind caption-shuffle --rate R --seed S --out NOISY/          # per cell
    nctool embed NOISY/FILE --checkpoint BASE.pt --out EMB/NAME                        # per cell
    .venv/bin/python benchmarks/decoy_count.py EMB/* [--decoys 1 --decoys 4 --decoys 16] [--draws 3]

`nctool score` scores one decoy per pair. Here the `similarity` detector's decoys are drawn again from
the shards' embeddings, K per pair (the pair's image with the captions of K random pairs of other
images), `draws` times, and `decoy_calibration` states the share from them. Prints per cell the truth,
the share from the shards' own decoys, and per K each draw's error (points) and interval width ("!":
the interval misses the truth); then per K the mean and worst error over cells and draws.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from nctool.detect.calibration import decoy_calibration


def random_decoys(image: np.ndarray, caption: np.ndarray, groups: np.ndarray, k: int,
                  rng: np.random.Generator) -> np.ndarray:
    """[N * K] noise scores (minus the cosine) of each pair's image with K captions of pairs of other images."""
    partner = rng.integers(0, len(groups), size=(len(groups), k))
    same = groups[partner] == groups[:, None]
    while same.any():
        partner[same] = rng.integers(0, len(groups), size=int(same.sum()))
        same = groups[partner] == groups[:, None]
    return -(image[:, None, :] * caption[partner]).sum(-1).ravel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--decoys", type=int, action="append")
    parser.add_argument("--draws", type=int, default=3)
    args = parser.parse_args()
    counts, errors = args.decoys or [1, 4, 16], []
    for folder in args.folders:
        shards = pd.concat([pd.read_parquet(path) for path in sorted(folder.glob("shard-*.parquet"))])
        image, caption = (np.stack(shards[column].to_numpy()) for column in ("image_embedding", "caption_embedding"))
        groups, truth, x = shards["image_id"].to_numpy(), shards["noisy"].mean(), -shards["similarity"].to_numpy(float)
        own = decoy_calibration(x, -shards["decoy_similarity"].to_numpy(float), groups, groups)
        line = [folder.name, f"truth {truth:.3f}", f"own decoys {100 * (own.share - truth):+.1f}"]
        for k in counts:
            cells = []
            for draw in range(args.draws):
                rng = np.random.default_rng([k, draw])
                stated = decoy_calibration(x, random_decoys(image, caption, groups, k, rng), groups,
                                           np.repeat(groups, k))
                (low, high), error = stated.share_interval, 100 * (stated.share - truth)
                errors.append({"decoys": k, "error": abs(error)})
                cells.append(f"{error:+.1f}/w{100 * (high - low):.0f}{'' if low <= truth <= high else '!'}")
            line.append(f"K={k} " + " ".join(cells))
        print(" | ".join(line), flush=True)
    table = pd.DataFrame(errors).groupby("decoys")["error"].agg(["mean", "max"]).round(1)
    print(table.rename(columns={"mean": "mean error", "max": "worst error"}).to_string())


if __name__ == "__main__":
    main()
