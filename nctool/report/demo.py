"""`nctool demo`: the embedded default, end to end on synthetic data in a few CPU minutes.

By default the demo runs the paper's regime: every model is fine-tuned from a small pretrained
base instead of random init (docs/method.md: RRSITR splits pairs by their loss from the first
step, which needs a model whose clean pairs already sit below the chance loss). There are no
downloadable weights offline, so the demo first builds its base (`build_base`): nctool-tiny
trained with plain InfoNCE on another synthetic corpus that lacks a third of the scene classes,
as CLIP has seen little remote sensing. `--from-scratch` runs the old regime (the `demo` recipe:
random init with an InfoNCE warm-up).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from nctool.config import Recipe, load_recipe
from nctool.curate.filtering import read_scores
from nctool.data.synth import CATEGORIES, generate, synthesize
from nctool.errors import NctoolError
from nctool.metrics import statement_table
from nctool.progress import Progress, silent
from nctool.report.bench import run_bench, train_once
from nctool.schema import check_output, noise_statements, read_table, write_table

HELD_OUT = CATEGORIES[::3]  # scene classes the base never sees
BASE_SEED_OFFSET = 97  # the base corpus is synth seed + 97 (100 for the default 3): never the target's images
STATED_SCORES = "base-scores.parquet"  # the base's out-of-sample scores of the noisy train pairs, beside the runs
BASE_OVERRIDES = ("loss.kind=infonce", "train.epochs=10")
"""The base's recipe: the demo recipe with plain InfoNCE for 10 epochs. Ten rather than two tell an
image's own captions from the others of its scene class better (within-class AUROC 0.595 against
0.546) and lift detection at high noise (benchmarks/README.md, "Hard noise"), for 100 s more."""


def base_recipe(extra=()) -> Recipe:
    """The recipe `build_base` trains the base with (BASE_OVERRIDES, then `extra`)."""
    return load_recipe("demo", [*BASE_OVERRIDES, *extra])


def build_base(out_dir: str | Path, *, recipe: Recipe, images: int = 1000, seed: int = 100,
               device: str | None = None, progress: Progress | None = None) -> Path:
    """Train the base once (bench.train_once: resumed if interrupted, reused once finished) and return its best.pt.

    The corpus: `images` synthetic images of synth seed `seed` minus the HELD_OUT classes, in
    `out_dir/data.parquet`; `recipe` trains it (the demo recipe with plain InfoNCE). Only the
    weights are kept (the run's last.pt, the resume file, is removed once it has finished).
    """
    if images < 10:  # said here, or synth's own refusal would not name the base
        raise NctoolError(f"base images {images}: too few; give --base-images 10 or more (default 1000)")
    out_dir = Path(out_dir)
    if not (out_dir / "data.parquet").exists():
        corpus = generate(images, seed=seed)
        write_table(corpus[~corpus["category"].isin(HELD_OUT)], out_dir / "data.parquet")
    train_once(out_dir / "data.parquet", out_dir / "run", recipe, device, progress, keep_last=False)
    return out_dir / "run" / "best.pt"


def run_demo(out_dir: str | Path, *, recipe: Recipe, base_recipe: Recipe | None = None, images: int = 600,
             base_images: int = 1000, rate: float = 0.4, seed: int = 3, progress: Progress | None = None) -> dict:
    """synth -> inject `rate` caption-shuffle noise -> vanilla and RRSITR training -> score with every
    detector -> filter -> retrain, with the report and plots of `nctool bench` in `out_dir`.

    `recipe` trains every run (with any overrides); with `base_recipe`, a base of `base_images`
    images is first trained with it (`build_base`, in `out_dir/base`) and every run fine-tunes from
    it; without, the runs start from `recipe`'s own weights. `seed` seeds the synthetic data and
    training. Each finished run keeps only its best.pt (the demo drops the resume files).
    """
    out_dir = check_output(out_dir, folder=True)
    if base_recipe is not None:
        base = build_base(out_dir / "base", recipe=base_recipe, images=base_images, seed=seed + BASE_SEED_OFFSET,
                          progress=progress)
        recipe = dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, pretrained=str(base)))
    data = out_dir / "data" / "synth.parquet"
    if not data.exists():
        synthesize(data, images=images, size=64, seed=seed, splits=(0.8, 0.1, 0.1), progress=progress)
    report = run_bench(data, out_dir=out_dir, recipe=recipe, rates=[rate], seeds=[seed],
                       methods=("vanilla", "rrsitr", "filtered"), progress=progress, keep_last=False)
    if base_recipe is not None:
        _score_out_of_sample(out_dir, _tag(rate), recipe, progress)
    report["explanation"] = _explain(report, out_dir, rate, pretrained=base_recipe is not None)
    return report


def _tag(rate: float) -> str:
    return f"caption-shuffle-{rate:.2f}"


def _score_out_of_sample(out_dir: Path, tag: str, recipe: Recipe, progress: Progress | None) -> None:
    """Score the noisy train pairs with the base, which never saw them, for the labels the demo states.

    A model trained on these very pairs has learned its noisy ones, so against fresh decoys they look
    clean and the share it states runs low (docs/labels.md, out of sample). The decoys are random
    captions, the demo's kind of noise; same-scene decoys would vouch for no pair with this small model.
    """
    from nctool.detect.measure import ModelSource
    from nctool.detect.score import score

    out = out_dir / "runs" / tag / STATED_SCORES
    if not out.exists():
        score(out_dir / "data" / f"{tag}.parquet", out=out, detectors=["rrsitr"], options={"scene_decoys": False},
              model=ModelSource(model=recipe.model.name, pretrained=recipe.model.pretrained, recipe=recipe),
              progress=progress or silent)


def _explain(report: dict, out_dir: Path, rate: float, *, pretrained: bool) -> str:
    """A short closing note that tells a newcomer what the numbers and files are."""
    mr = dict(zip(report["results"]["method"], report["results"]["mr"]))
    det = report["detection"]
    auroc = dict(zip(det["detector"], det["auroc"])) if len(det) else {}
    tag = _tag(rate)
    start = (f"fine-tuned from a small pretrained base ({out_dir / 'base'}: nctool-tiny trained on other synthetic "
             f"scenes, a third of the classes unseen)" if pretrained else "trained from random init")
    lines = [
        "",
        f"What you are looking at: {rate:.0%} of the training captions were swapped to other images; "
        f"every model is {start}.",
        f"- vanilla: plain InfoNCE on the noisy pairs; test mR {mr.get('vanilla', float('nan')):.1f}.",
        f"- rrsitr: RRSITR (self-paced split + robust triplet) on the same pairs; "
        f"test mR {mr.get('rrsitr', float('nan')):.1f}.",
        f"- filtered: RRSITR retrained after dropping the pairs the rrsitr detector labelled noisy; "
        f"test mR {mr.get('filtered', float('nan')):.1f}.",
        "- detection: how well each detector ranks the truly swapped pairs (AUROC 1 = perfect, 0.5 = chance): "
        + ", ".join(f"{k} {v:.3f}" for k, v in auroc.items()) + ".",
        *_stated(out_dir, tag),
        f"Files: {out_dir / 'results.md'} (tables), {out_dir / 'runs' / tag / 'rrsitr-s*' / 'loss_histogram.png'} "
        f"(per-pair loss with the g1/g2 lines), roc_pr.png beside it, and scores.parquet / kept.parquet "
        f"(per-pair reliability and label; the cleaned data).",
    ]
    return "\n".join(lines)


def _stated(out_dir: Path, tag: str) -> list[str]:
    """What the rrsitr detector stated about the noisy data (docs/labels.md), beside the truth: scored by the
    base (out of sample) when there is one, else by the RRSITR run (in sample: its share runs low)."""
    scores_path = out_dir / "runs" / tag / STATED_SCORES
    scored_by = "the base model, which never trained on these pairs"
    if not scores_path.exists():
        scores_path = next((out_dir / "runs" / tag).glob("rrsitr-s*/scores.parquet"), None)
        scored_by = "the RRSITR run, in sample: it trained on these pairs, so its share runs low"
    if scores_path is None:
        return []
    truth = read_table(out_dir / "data" / f"{tag}.parquet", columns=["pair_id", "noisy"]).set_index("pair_id")["noisy"]
    rows = [row for row in statement_table(read_scores(scores_path), noise_statements(scores_path), truth)
            if row["detector"] == "rrsitr" and row.get("method") == "decoys"]
    if not rows:
        return []
    [row] = rows
    line = f"- labels (rrsitr scored by {scored_by}; against decoys, docs/labels.md): "
    if row["estimate"] is None:
        return [line + "not enough evidence to state a noise share; every pair is ambiguous."]
    line += f"noise share {row['estimate']:.1%} (90 %: {row['low']:.1%}-{row['high']:.1%}; truly {row['truth']:.1%})"
    if row["clean"]:
        line += (f"; clean {row['clean']:,} pairs, est. {row['clean_contamination']:.1%} noisy "
                 f"(truly {row['clean_truth']:.1%})")
    elif row.get("scene_estimate") is not None:
        line += (f"; no pair called clean: this model scores a caption of another image of the same scene like "
                 f"the image's own (same-scene share {row['scene_estimate']:.0%}), so it cannot vouch against such "
                 f"swaps (score --no-scene-decoys cuts against random captions only)")
    else:
        line += (f"; no pair called clean: no set reaches {row['max_contamination']:.0%} estimated noise "
                 "(not enough evidence)")
    if row["noisy"]:
        line += (f"; noisy {row['noisy']:,} pairs, est. precision {row['noisy_precision']:.0%} "
                 f"(90 %: {row['noisy_low']:.0%}-{row['noisy_high']:.0%}; truly {row['noisy_truth']:.0%})")
    return [line + "."]
