"""`nctool synth`: write a demo dataset of procedurally drawn remote-sensing scenes, 5 captions each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nctool.cli._ui import app, console, progress_bar, summary_table
from nctool.data.synth import synthesize


@app.command("synth")
def synth_command(
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write, e.g. data/demo.parquet.")],
    images: Annotated[int, typer.Option("--images", help="Number of images (at least 10); each gets 5 captions.")]
    = 1000,
    size: Annotated[int, typer.Option("--size", help="Image width and height in pixels, 32 to 256.")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed writes the same data.")] = 0,
    val: Annotated[float, typer.Option("--val", help="Fraction of the images in the val split.")] = 0.1,
    test: Annotated[float, typer.Option("--test", help="Fraction of the images in the test split "
                                                       "(train gets the rest).")] = 0.1,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it already exists.")] = False,
) -> None:
    """Generate demo data: synthetic top-down scenes (airports, rivers, parking lots, ...) with 5 captions each."""
    with progress_bar() as progress:
        summary = synthesize(out, images=images, size=size, seed=seed, splits=(1 - val - test, val, test),
                             overwrite=overwrite, progress=progress)
    summary_table(f"synth: {size} x {size} px, seed {seed}", summary["splits"])
    console.print(f"wrote {summary['splits'][-1]['pairs']} pairs to {summary['path']} "
                  f"({_file_size(summary['file_size'])})", highlight=False, soft_wrap=True)


def _file_size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"
