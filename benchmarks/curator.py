"""A simulated curator on the review queue (issue 18): which order finds the noise fastest, how many
presses the grid's bulk actions save, and whether the audited noise share holds.

The curator answers from the ground truth (`noisy`): drop a noisy pair, keep a clean one. Everything
runs in this process through the library the page calls (ReviewQueue, DecisionStore), no browser.

    # noisy pairs found per 100 cards, by order, after 50 / 100 / 200 decisions
    .venv/bin/python benchmarks/curator.py orders DATA SCORES --detector rrsitr
    # presses to decide the 1,000 noisiest pairs: one card at a time against the grid
    .venv/bin/python benchmarks/curator.py presses DATA SCORES --detector rrsitr --flagged 1000
    # the audited share over 50 simulated audits of 200 decisions, at each noise rate
    .venv/bin/python benchmarks/curator.py audit BASE_DATA --rates 0.2 0.4 0.6 0.8 --audits 50
    # a 100k-pair synthetic data and scores pair with ground truth, for the first two at scale
    .venv/bin/python benchmarks/curator.py synth --pairs 100000 --out DIR

DATA is a noised dataset with ground truth, SCORES its scores file (with every detector, so the
learned order has all of them as inputs); BASE_DATA a clean dataset (`nctool synth`), noised here
once per audit with caption-shuffle noise.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nctool.curate.review.audit import audit_order, audit_share
from nctool.curate.review.queue import ReviewQueue
from nctool.data.decisions import DecisionStore
from nctool.data.noise import inject
from nctool.schema import read_table, row_hashes, write_table

CHECKPOINTS = (50, 100, 200, 500, 800)


def truth_of(queue: ReviewQueue) -> np.ndarray:
    return queue.pairs["noisy"].to_numpy(dtype=bool)


def run_order(queue: ReviewQueue, store: DecisionStore, order: str, decisions: int, warm_up: int = 0) -> list[dict]:
    """Decide `decisions` pairs in `order` (the first `warm_up` of them in the uncertain order), each the first
    undecided one the queue shows at that moment. At each checkpoint: the truly noisy among the next 100
    undecided pairs the order shows, all found so far, and how well the queue's chance of noise (the
    learner's once fitted) ranks the undecided pairs against the detector's reliability on the same pairs:
    AUROC, and R-precision (of the R noisy pairs left, the share among the first R ranked)."""
    from nctool.metrics import detection_metrics

    truth, ids = truth_of(queue), queue.pairs["pair_id"].to_numpy()
    reliability = queue.pairs["reliability"].to_numpy()
    rows, found = [], 0
    for done in range(1, decisions + 1):
        first = queue.select(order=order if done > warm_up else "uncertain", state="undecided")[0]
        store.record(ids[first], "drop" if truth[first] else "keep")
        queue.sync(store, [ids[first]])
        found += truth[first]
        if done in CHECKPOINTS:
            upcoming = queue.select(order=order, state="undecided")
            chance = np.empty(len(queue.pairs))
            chance[queue.order] = queue.noise_chance()
            left = truth[upcoming]
            top = int(left.sum())
            by_detector = upcoming[np.argsort(reliability[upcoming], kind="stable")]
            rows.append({"order": order + (f" ({warm_up} uncertain first)" if warm_up else ""), "decisions": done,
                         "noisy in next 100": int(truth[upcoming[:100]].sum()),
                         "found so far": int(found), "learned from": queue.summary()["learned"]["decisions"],
                         "learned share error (points)": _points(queue.summary()["learned"]["estimate"],
                                                                 truth[queue.order].mean()),
                         "AUROC left, queue": detection_metrics(truth[upcoming], chance[upcoming])["auroc"],
                         "AUROC left, detector": detection_metrics(truth[upcoming], -reliability[upcoming])["auroc"],
                         "R-precision left, queue": truth[upcoming[np.argsort(-chance[upcoming], kind="stable")][
                             :top]].mean(),
                         "R-precision left, detector": truth[by_detector[:top]].mean()})
    return rows


def _points(estimate: float | None, truth: float) -> float:
    return float("nan") if estimate is None else 100 * (estimate - truth)


def orders(args) -> pd.DataFrame:
    rows = []
    for order, warm_up in (("noisiest", 0), ("uncertain", 0), ("learned", 0), ("learned", 50)):
        queue = ReviewQueue.load(args.data, args.scores, detector=args.detector)
        with tempfile.TemporaryDirectory() as folder, DecisionStore(Path(folder) / "d.sqlite", reviewer="sim") as store:
            start = time.perf_counter()
            rows += run_order(queue, store, order, max(CHECKPOINTS), warm_up)
            print(f"{order}: {(time.perf_counter() - start) / max(CHECKPOINTS):.3f} s per decision", flush=True)
    return pd.DataFrame(rows)


def grid_presses(noisy: np.ndarray, page: int) -> int:
    """Presses to decide pairs shown `page` at a time in the grid: select the page's minority (keep or drop),
    a click per tile, or a click and a shift-click per run of two or more neighbouring tiles; one key to
    decide the selection, one to select the rest of the page's undecided tiles, one to decide them, one
    for the next page. A page all of one kind takes select-all, decide, next. Scrolling is not counted."""
    presses = 0
    for start in range(0, len(noisy), page):
        tiles = noisy[start:start + page]
        minority = tiles if tiles.sum() <= (~tiles).sum() else ~tiles
        runs = np.diff(np.r_[0, minority.astype(int), 0])
        lengths = np.flatnonzero(runs == -1) - np.flatnonzero(runs == 1)
        selecting = int(np.minimum(lengths, 2).sum())
        presses += (selecting + 1 if selecting else 0) + 2 + 1
    return presses


def presses(args) -> pd.DataFrame:
    queue = ReviewQueue.load(args.data, args.scores, detector=args.detector)
    truth = truth_of(queue)
    rows = []
    flagged = queue.select(order="noisiest")[:args.flagged]
    rows.append({"way": "one card at a time (a / d, the next card opens itself)", "presses": len(flagged),
                 "wrong decisions": 0})
    for page in args.page:
        rows.append({"way": f"grid of {page}, noisiest order", "presses": grid_presses(truth[flagged], page),
                     "wrong decisions": 0})
    # a rule first: drop every pair whose noisy probability is at least the lowest cut the detector states
    # 95 % noise for (3 presses: the cut, the preview, confirm), then the grid for the rest
    chance = np.empty(len(queue.pairs))
    chance[queue.order] = queue.noise_chance()
    for cut in np.round(np.arange(0.5, 1.0001, 0.01), 2):
        rule = queue.rule(min_noisy_probability=float(cut))
        if rule["expected_noise"] is not None and rule["expected_noise"] >= 0.95:
            break
    ruled = np.array([queue.row_of[pair_id] for pair_id in rule["pair_ids"]], dtype=np.int64)
    ruled = np.intersect1d(ruled, flagged)
    rest = flagged[~np.isin(flagged, ruled)]
    for page in args.page:
        rows.append({"way": f"rule (noisy probability >= {cut:g}: {len(ruled)} pairs, stated "
                            f"{100 * rule['expected_noise']:.1f} % noise), then a grid of {page}",
                     "presses": 3 + grid_presses(truth[rest], page), "wrong decisions": int((~truth[ruled]).sum())})
    table = pd.DataFrame(rows)
    table["fewer than one at a time"] = len(flagged) / table["presses"]
    return table


def audits(args) -> pd.DataFrame:
    base = read_table(args.data)
    rows = []
    for rate in args.rates:
        errors, covered = [], 0
        for seed in range(args.audits):
            noised, _ = inject(base, rate, "caption-shuffle", seed=1000 + seed)
            train = noised[noised["split"] == "train"]
            truth = train["noisy"].to_numpy(dtype=bool)[audit_order(train["pair_id"].to_numpy())]
            actions = [("drop" if noisy else "keep") if i < args.decisions else None for i, noisy in enumerate(truth)]
            report = audit_share(actions)
            errors.append(report["estimate"] - truth.mean())
            covered += report["low"] <= truth.mean() <= report["high"]
        errors = np.array(errors)
        rows.append({"rate": rate, "audits": args.audits, "decisions": args.decisions,
                     "mean abs error (points)": 100 * np.abs(errors).mean(),
                     "worst error (points)": 100 * np.abs(errors).max(),
                     "90 % interval covers": f"{covered}/{args.audits}"})
    return pd.DataFrame(rows)


def synth(args) -> None:
    """`pairs` pairs of 5 captions per image, 40 % noisy, with 5 detectors' scores that see the noise through
    different errors (the learner can combine them), and a caption-length effect none of them has."""
    rng = np.random.default_rng(args.seed)
    n = args.pairs
    noisy = rng.random(n) < 0.4
    words = rng.integers(6, 20, n)
    noisy |= (words > 17) & (rng.random(n) < 0.5)  # long captions are noisier: something only the learner can see
    data = pd.DataFrame({"pair_id": [f"pair/{i:07d}" for i in range(n)],
                         "image_id": [f"img/{i // 5:06d}" for i in range(n)],
                         "caption": [" ".join(["word"] * w) + f" {i}" for i, w in enumerate(words)],
                         "split": "train", "category": rng.choice(["airport", "beach", "farmland", "river"], n),
                         "noisy": noisy})
    data["image"] = [{"bytes": None, "path": "none.png"}] * n
    frames = []
    shared = rng.normal(size=n)
    for k, name in enumerate(("rrsitr", "similarity", "loss-gmm", "neighbors", "siblings")):
        signal = np.where(noisy, -1.0, 1.0) * (1.2 - 0.15 * k) + 0.6 * shared + rng.normal(size=n)
        reliability = 1 / (1 + np.exp(-signal))
        frames.append(pd.DataFrame({"pair_id": data["pair_id"], "row_hash": row_hashes(data),
                                    "reliability": reliability, "detector": name,
                                    "label": np.where(reliability < 0.3, "noisy", "ambiguous")}))
    args.out.mkdir(parents=True, exist_ok=True)
    write_table(data, args.out / "data.parquet")
    write_table(pd.concat(frames, ignore_index=True), args.out / "scores.parquet")
    print(f"{n} pairs, {noisy.mean():.3f} noisy -> {args.out}/data.parquet, scores.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("orders", "presses"):
        command = commands.add_parser(name)
        command.add_argument("data", type=Path)
        command.add_argument("scores", type=Path)
        command.add_argument("--detector", default="rrsitr")
        command.add_argument("--flagged", type=int, default=1000)
        command.add_argument("--page", type=int, nargs="+", default=[60, 100, 200])
    audit = commands.add_parser("audit")
    audit.add_argument("data", type=Path)
    audit.add_argument("--rates", type=float, nargs="+", default=[0.2, 0.4, 0.6, 0.8])
    audit.add_argument("--audits", type=int, default=50)
    audit.add_argument("--decisions", type=int, default=200)
    made = commands.add_parser("synth")
    made.add_argument("--pairs", type=int, default=100_000)
    made.add_argument("--seed", type=int, default=0)
    made.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "synth":
        return synth(args)
    table = {"orders": orders, "presses": presses, "audit": audits}[args.command](args)
    print(table.to_string(index=False, float_format=lambda value: f"{value:.3g}"))


if __name__ == "__main__":
    main()
