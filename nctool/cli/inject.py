"""`nctool inject`: write noised copies of a dataset, one Parquet per rate, with ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from nctool.cli._ui import app, console, progress_bar, summary_table
from nctool.errors import NctoolError
from nctool.noise import KINDS, inject_many
from nctool.schema import image_root, read_table, write_table


@app.command("inject")
def inject_command(
    data: Path = typer.Argument(..., help="Dataset Parquet in nctool's schema (docs/schema.md)."),
    rate: list[float] = typer.Option([], "--rate", help="Noise rate in [0, 1); repeat for one file per rate."),
    kind: str = typer.Option(..., "--kind", help=f"Noise kind: {', '.join(KINDS)} (docs in nctool/noise.py)."),
    seed: int = typer.Option(42, "--seed", help="Random seed (rrsitr's benchmark files use 42)."),
    split: list[str] = typer.Option(["train"], "--split", help="Split to noise; repeat for several. "
                                    "Other splits are copied untouched."),
    out: Path = typer.Option(..., "--out", help="Output folder; gets {stem}.{kind}-{rate:.2f}.parquet per rate."),
) -> None:
    """Inject synthetic noisy correspondence (captions moved to other images) at one or more rates."""
    if out.exists() and not out.is_dir():
        raise NctoolError(f"{out}: is a file, not a folder; give --out a folder for the noised files")
    dests = [out / f"{data.stem}.{kind}-{r:.2f}.parquet" for r in rate]
    if len(set(dests)) < len(dests):
        raise NctoolError(f"--rate {' '.join(f'{r:g}' for r in rate)}: two rates share an output name "
                          f"({{rate:.2f}}); give rates that differ in the first two decimals")
    df = read_table(data)
    with progress_bar() as progress:
        results = inject_many(df, rate, kind, seed, split, progress=progress)
        root = image_root(data)  # the outputs live elsewhere: keep relative image paths resolvable
        for i, ((_, noised, _), dest) in enumerate(zip(results, dests)):
            write_table(noised, dest, image_root=root)
            progress(i + 1, len(dests), "writing")
    rows = [{"rate": r, "split": st.split, "rows": st.rows, "requested": st.rate, "chosen": st.chosen,
             "noisy share": st.noisy_share, "file": str(dest)}
            for (r, _, stats), dest in zip(results, dests) for st in stats]
    summary_table(f"inject: {kind}, seed {seed}", rows)
    console.print(f"wrote {len(dests)} file(s) to {out} ({data.stem}.{kind}-RATE.parquet)")
