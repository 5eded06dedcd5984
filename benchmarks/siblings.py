"""Detection AUROC / AUPRC of every detector, `siblings` included, on the models an `nctool bench` trained.

Usage: .venv/bin/python benchmarks/siblings.py BENCH [--kind caption-shuffle --kind category]
       [--rate 0.2 ...] [--out FOLDER] [--device cpu]

BENCH is an `nctool bench --out` folder: data in BENCH/data/{kind}-{rate:.2f}.parquet, the RRSITR
model in BENCH/runs/{kind}-{rate:.2f}/rrsitr-s3/best.pt. Each is scored twice with the plain
`score` call: every detector with its defaults, and `siblings` with `iterations=0` (siblings
weigh equally, no re-weighting), the ablation of the reliability weights. Prints two Markdown
tables (rows kind and rate, columns detectors); the scores files stay in --out.
"""

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from nctool.detect.detectors import detector_names
from nctool.detect.measure import ModelSource
from nctool.detect.score import score

PLAIN_MEAN = "siblings, plain mean"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bench")
    parser.add_argument("--kind", action="append", default=None)
    parser.add_argument("--rate", action="append", type=float, default=None)
    parser.add_argument("--out", default=None, help="folder for the scores files (default: a temp folder)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    bench, out = Path(args.bench), Path(args.out or tempfile.mkdtemp(prefix="siblings-"))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for kind in args.kind or ["caption-shuffle", "category"]:
        for rate in args.rate or [0.2, 0.4, 0.6, 0.8]:
            name = f"{kind}-{rate:.2f}"
            data, checkpoint = bench / "data" / f"{name}.parquet", bench / "runs" / name / "rrsitr-s3" / "best.pt"
            found = score(data, model=ModelSource(checkpoint=checkpoint), out=out / f"{name}.parquet",
                          detectors=["all"],
                          device=args.device)["detectors"]
            plain = score(data, model=ModelSource(checkpoint=checkpoint), out=out / f"{name}.plain.parquet",
                          detectors=["siblings"],
                          options={"iterations": 0}, device=args.device)["detectors"]
            for row in found + [{**plain[0], "detector": PLAIN_MEAN}]:
                rows.append({"kind": kind, "rate": rate, **row})
    table = pd.DataFrame(rows)
    for metric in ("auroc", "auprc"):
        wide = table.pivot_table(index=["kind", "rate"], columns="detector", values=metric, sort=False)
        wide = wide[[*detector_names(), PLAIN_MEAN]]
        print(f"\n{metric.upper()}\n\n| noise | rate | " + " | ".join(wide.columns) + " |")
        print("|---" * (2 + len(wide.columns)) + "|")
        for (kind, rate), values in wide.iterrows():
            print(f"| {kind} | {rate:.0%} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    print(f"\nscores files in {out}")


if __name__ == "__main__":
    main()
