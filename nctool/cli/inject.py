"""`nctool inject`: write noised copies of a dataset, one Parquet per rate, with ground truth."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from nctool.cli._ui import app, console, progress_bar, summary_table
from nctool.data.noise import KINDS, inject_files

Kind = Enum("Kind", {k: k for k in KINDS}, type=str)


@app.command("inject")
def inject_command(
    data: Annotated[Path, typer.Argument(help="Dataset Parquet in nctool's schema (docs/schema.md).")],
    kind: Annotated[Kind, typer.Option("--kind", help="Noise kind (docs in nctool/data/noise.py).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder; gets {stem}.{kind}-{rate}-s{seed}.parquet "
                                      "per rate.")],
    rate: Annotated[list[float], typer.Option("--rate", help="Noise rate in [0, 1); repeat for one file per "
                                              "rate.")] = [],
    seed: Annotated[int, typer.Option("--seed", help="Random seed (rrsitr's benchmark files use 42).")] = 42,
    split: Annotated[list[str], typer.Option("--split", help="Split to noise; repeat for several. "
                                             "Other splits are copied untouched.")] = ["train"],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace noised files that already "
                                            "exist.")] = False,
) -> None:
    """Inject synthetic noisy correspondence (captions moved to other images) at one or more rates."""
    with progress_bar() as progress:
        files = inject_files(data, out=out, rates=rate, kind=kind.value, seed=seed, splits=split,
                             overwrite=overwrite, progress=progress)
    rows = [{"rate": f.rate, "split": st.split, "rows": st.rows, "requested": st.rate, "chosen": st.chosen,
             "noisy share": st.noisy_share, "file": str(f.path)}
            for f in files for st in f.stats]
    summary_table(f"inject: {kind.value}, seed {seed}", rows)
    console.print(f"wrote {len(files)} file(s) to {out}", highlight=False, soft_wrap=True)
