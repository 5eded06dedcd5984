"""`nctool synth`: write a demo dataset of procedurally drawn remote-sensing scenes, 5 captions each."""

from __future__ import annotations

from pathlib import Path

import typer

from nctool.cli._ui import app, console, progress_bar, summary_table
from nctool.errors import NctoolError
from nctool.schema import SPLITS, write_table
from nctool.synth import check_options, generate


@app.command("synth")
def synth_command(
    out: Path = typer.Option(..., "--out", help="Parquet file to write, e.g. data/demo.parquet."),
    images: int = typer.Option(1000, "--images", help="Number of images (at least 10); each gets 5 captions."),
    size: int = typer.Option(64, "--size", help="Image width and height in pixels, 32 to 256."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed writes the same data."),
    val: float = typer.Option(0.1, "--val", help="Fraction of the images in the val split."),
    test: float = typer.Option(0.1, "--test", help="Fraction of the images in the test split (train gets the rest)."),
) -> None:
    """Generate demo data: synthetic top-down scenes (airports, rivers, parking lots, ...) with 5 captions each."""
    if out.is_dir():
        raise NctoolError(f"{out}: is a folder; give --out a file path such as data/demo.parquet")
    splits = (1 - val - test, val, test)
    check_options(images, size, splits)  # before the progress bar, so an error is the only output
    with progress_bar() as progress:
        df = generate(images, size=size, seed=seed, splits=splits, progress=progress)
    write_table(df, out)
    per_image = df.drop_duplicates("image_id")
    rows = [{"split": s, "images": int((per_image["split"] == s).sum()), "pairs": int((df["split"] == s).sum()),
             "classes": per_image.loc[per_image["split"] == s, "category"].nunique()} for s in SPLITS]
    rows.append({"split": "total", "images": len(per_image), "pairs": len(df),
                 "classes": per_image["category"].nunique()})
    summary_table(f"synth: {size} x {size} px, seed {seed}", rows)
    console.print(f"wrote {len(df)} pairs to {out} ({_file_size(out.stat().st_size)})", highlight=False, soft_wrap=True)


def _file_size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"
