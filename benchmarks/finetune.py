"""The paper's regime offline (issue 9): fine-tune from a weak pretrained base instead of random init.

Usage:
    .venv/bin/python benchmarks/finetune.py CLEAN_DATA --out DIR [--rate 0.4 --rate 0.8] [--seed 3 ...]
                                            [--method vanilla --method rrsitr ...] [--kind category ...]
                                            [--set loss.use_local=true ...]

1. Base: nctool-tiny trained with plain InfoNCE (nctool.report.demo.base_recipe: 10 epochs; 2 before
   issue 19, which the tables of c1b6952 and the labels benchmark used) on a clean synthetic corpus disjoint
   from CLEAN_DATA (synth seed 100, 1,000 images) that lacks a third of the scene classes
   (nctool.report.demo.HELD_OUT), as CLIP has seen little remote sensing (nctool.report.demo.build_base,
   as `nctool demo` builds it). Reused when DIR/base/run/best.pt exists.
2. Zero-shot: every detector scores the noised train split with the base alone
   (`nctool score --model nctool-tiny --pretrained base/best.pt --recipe finetune`).
3. Fine-tuning: `nctool bench` with the `finetune` recipe from the base (RRSITR from step 0, no
   warm-up, 3 epochs, lr 1e-4) at the given rates, methods and seeds.
Prints the bench's tables and the zero-shot detection rows; everything stays in DIR.
"""

import argparse
import dataclasses
from pathlib import Path

import pandas as pd

from nctool.config import load_recipe
from nctool.curate.filtering import read_scores
from nctool.data.noise import inject
from nctool.detect.measure import ModelSource
from nctool.detect.score import score
from nctool.metrics import detection_table
from nctool.report.bench import run_bench
from nctool.report.demo import base_recipe, build_base
from nctool.schema import read_table, write_table


def zero_shot_rows(clean: Path, base: Path, out: Path, rates: list[float], kinds: list[str]) -> pd.DataFrame:
    rows = []
    for kind, rate in ((kind, rate) for kind in kinds for rate in rates if rate > 0):
        noisy = out / "zero-shot" / f"{kind}-{rate:.2f}.parquet"
        if not noisy.exists():
            write_table(inject(read_table(clean), rate, kind, seed=42)[0], noisy)
        scores = noisy.with_suffix(".scores.parquet")
        if not scores.exists():
            score(noisy, out=scores, model=ModelSource(model="nctool-tiny", pretrained=base, recipe="finetune"),
                  detectors=["all"])
        truth = read_table(noisy, columns=["pair_id", "noisy"]).set_index("pair_id")["noisy"]
        rows += [{"kind": kind, "noise_rate": rate, **row} for row in detection_table(read_scores(scores), truth)]
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("clean", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rate", type=float, action="append")
    parser.add_argument("--seed", type=int, action="append")
    parser.add_argument("--method", action="append")
    parser.add_argument("--kind", action="append")
    parser.add_argument("--set", action="append", default=[], help="recipe override section.key=value")
    args = parser.parse_args()
    rates, kinds = args.rate or [0.4, 0.8], args.kind or ["caption-shuffle"]
    base = build_base(args.out / "base", recipe=base_recipe())
    recipe = load_recipe("finetune", args.set)
    recipe = dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, pretrained=str(base)))
    report = run_bench(args.clean, out_dir=args.out / "bench", recipe=recipe, rates=rates, kinds=kinds,
                       seeds=args.seed or [3],
                       methods=args.method or ["vanilla", "rrsitr"])
    pd.set_option("display.width", 200)
    print(report["results"].to_string(index=False))
    print(report["detection"].to_string(index=False))
    print("zero-shot base:")
    print(zero_shot_rows(args.clean, base, args.out, rates, kinds).to_string(index=False))


if __name__ == "__main__":
    main()
