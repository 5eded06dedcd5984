"""Does a curator's review, fed back into training, move test mR? (issue 8)

Usage:
    .venv/bin/python benchmarks/review_feedback.py DATA SCORES --out DIR [--pairs 200] [--seed 3 --seed 13 ...]

DATA is a noised dataset with ground truth (`noisy`), SCORES the rrsitr scores of a model trained
on it (e.g. what `nctool demo` leaves in runs/demo). The curator is simulated with the ground
truth: of the `--pairs` lowest-reliability train pairs, the truly noisy ones are dropped and the
others kept. Then RRSITR (demo recipe) trains on DATA without and with those decisions, per seed,
and the script prints test mR of both, mean and std over the seeds.
"""

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

from nctool.config import load_recipe
from nctool.curate.filtering import read_scores
from nctool.data.decisions import DecisionStore
from nctool.model.train import train
from nctool.schema import read_table


def simulate_curator(data: Path, scores: Path, store_path: Path, pairs: int) -> dict:
    """Record keep/drop for the `pairs` lowest-reliability train pairs, judged by the ground truth."""
    truth = read_table(data, columns=["pair_id", "split", "noisy"]).set_index("pair_id")
    rrsitr = read_scores(scores).query("detector == 'rrsitr'")
    rrsitr = rrsitr[truth.loc[rrsitr["pair_id"], "split"].to_numpy() == "train"]
    lowest = rrsitr.sort_values(["reliability", "pair_id"]).head(pairs)["pair_id"]
    with DecisionStore(store_path, reviewer="simulated") as store:
        for pair_id in lowest:
            store.record(pair_id, "drop" if truth.at[pair_id, "noisy"] else "keep")
        return store.counts()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("scores", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--seed", type=int, action="append")
    args = parser.parse_args()
    seeds = args.seed or [3]
    decisions = args.out / "decisions.sqlite"
    counts = simulate_curator(args.data, args.scores, decisions, args.pairs)
    recipe = load_recipe("demo")
    results = {"without": [], "with": []}
    for seed in seeds:
        seeded = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, seed=seed))
        for name, given in (("without", None), ("with", decisions)):
            run = args.out / f"{name}-s{seed}"
            done = run / "results.json"
            if not done.exists():
                train(args.data, out_dir=run, recipe=seeded, decisions=given)
            results[name].append(json.loads(done.read_text())["test"]["mr"])
    print(f"decisions: {counts} on the {args.pairs} lowest-reliability train pairs")
    for name, values in results.items():
        spread = statistics.stdev(values) if len(values) > 1 else float("nan")
        print(f"RRSITR {name:7s} decisions: test mR {statistics.mean(values):.2f} ± {spread:.2f}  {values}")
    gains = [b - a for a, b in zip(results["without"], results["with"])]
    print(f"gain per seed: {[round(g, 2) for g in gains]}, mean {statistics.mean(gains):+.2f}")


if __name__ == "__main__":
    main()
