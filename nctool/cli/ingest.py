"""`nctool ingest`: convert a dataset (Karpathy JSON, RRSITR CSVs, HF Parquet, folder + CSV) to nctool's schema."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nctool.cli._ui import app, console, progress_bar, summary_table
from nctool.ingest import FORMATS, ingest
from nctool.schema import write_table


@app.command("ingest")
def ingest_command(
    sources: list[Path] = typer.Argument(..., help="Caption file(s) or a folder holding them: dataset_rsitmd.json, "
                                         "rsitmd_{train,val,test}.csv, a .parquet, or a CSV/JSONL of file,caption."),
    out: Path = typer.Option(..., "--out", help="Output Parquet in nctool's schema."),
    fmt: str = typer.Option("auto", "--format", help=f"Source format: auto, {', '.join(FORMATS)}."),
    name: Optional[str] = typer.Option(None, "--name", help="Dataset name in the ids (default: from the file name)."),
    image_root: Optional[Path] = typer.Option(None, "--image-root", help="Folder holding the images (RRSITR CSV "
                                              "paths are remapped here by file name)."),
    embed: bool = typer.Option(False, "--embed", help="Store the image bytes in the file (self-contained)."),
    check_images: bool = typer.Option(False, "--check-images", help="Decode every image; fail on missing or "
                                      "corrupt ones without writing."),
    skip_bad_images: bool = typer.Option(False, "--skip-bad-images", help="Check images and drop the pairs of "
                                         "missing or corrupt ones."),
    drop_empty: bool = typer.Option(False, "--drop-empty", help="Drop pairs whose caption is empty."),
    caption_column: Optional[str] = typer.Option(None, "--caption-column", help="Caption column of a table "
                                                 "(default: caption, text, title or sentence)."),
    split: Optional[str] = typer.Option(None, "--split", help="Split of rows whose source names none "
                                        "(default: train)."),
) -> None:
    """Convert an image-caption dataset to one nctool Parquet (one row per image-caption pair)."""
    with progress_bar() as progress:
        df, summary = ingest(sources, fmt=fmt, name=name, image_root=image_root, embed=embed,
                             check_images=check_images, skip_bad_images=skip_bad_images, drop_empty=drop_empty,
                             caption_column=caption_column, split=split, progress=progress)
    write_table(df, out, image_root=summary["image_root"])
    rows = [{"split": s, "pairs": n["pairs"], "images": n["images"]} for s, n in summary["splits"].items()]
    rows.append({"split": "total", "pairs": summary["rows"], "images": summary["images"]})
    summary_table(f"ingest: {', '.join(summary['datasets'])} ({summary['format']})", rows)
    categories = summary["categories"]
    shown = ", ".join(categories[:8]) + (", ..." if len(categories) > 8 else "")
    console.print(f"categories: {len(categories)}" + (f" ({shown})" if categories else ""))
    if summary["images_checked"]:
        console.print(f"images checked: {summary['missing_images']} not found, {summary['corrupt_images']} corrupt "
                      f"({summary['dropped_bad_image_pairs']} pairs dropped)")
    if summary["dropped_empty_captions"]:
        console.print(f"dropped {summary['dropped_empty_captions']} pairs with an empty caption")
    for warning in summary["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    images = "embedded" if summary["embedded"] else f"root {summary['image_root']}"
    console.print(f"wrote {summary['rows']} pairs to {out} (images {images})", highlight=False, soft_wrap=True)
