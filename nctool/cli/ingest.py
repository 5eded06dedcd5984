"""`nctool ingest`: convert a dataset (Karpathy JSON, RRSITR CSVs, HF Parquet, folder + CSV) to nctool's schema."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from nctool.cli._ui import app, console, progress_bar, summary_table
from nctool.data.ingest import FORMAT_CHOICES, ingest

Format = Enum("Format", {f: f for f in FORMAT_CHOICES}, type=str)


@app.command("ingest")
def ingest_command(
    sources: Annotated[list[Path], typer.Argument(help="Caption file(s) or a folder holding them: dataset_rsitmd.json, "
                                                  "rsitmd_{train,val,test}.csv, a .parquet, or a CSV/JSONL of "
                                                  "file,caption.")],
    out: Annotated[Path, typer.Option("--out", help="Output Parquet in nctool's schema.")],
    fmt: Annotated[Format, typer.Option("--format", help="Source format (auto: from each file).")] = Format("auto"),
    name: Annotated[Optional[str], typer.Option("--name", help="Dataset name in the ids (default: from the file "
                                                "name).")] = None,
    image_root: Annotated[Optional[Path], typer.Option("--image-root", help="Folder holding the images (RRSITR CSV "
                                                       "paths are remapped here by file name).")] = None,
    embed: Annotated[bool, typer.Option("--embed", help="Store the image bytes in the file (self-contained); "
                                        "checks that every image decodes.")] = False,
    check_images: Annotated[bool, typer.Option("--check-images", help="Decode every image; fail on missing or "
                                               "corrupt ones without writing.")] = False,
    skip_bad_images: Annotated[bool, typer.Option("--skip-bad-images", help="Check images and drop the pairs of "
                                                  "missing or corrupt ones.")] = False,
    drop_empty: Annotated[bool, typer.Option("--drop-empty", help="Drop pairs whose caption is empty (nothing "
                                             "visible: whitespace, control, zero-width or bidi characters).")] = False,
    allow_outside_root: Annotated[bool, typer.Option("--allow-outside-root", help="Accept relative image paths "
                                                     "that climb out of the image root (..).")] = False,
    caption_column: Annotated[Optional[str], typer.Option("--caption-column", help="Caption column of a table "
                                                          "(default: caption, text, title or sentence).")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Split of rows whose source names none "
                                                 "(default: train).")] = None,
) -> None:
    """Convert an image-caption dataset to one nctool Parquet (one row per image-caption pair)."""
    with progress_bar() as progress:
        summary = ingest(sources, out=out, fmt=fmt.value, name=name, image_root=image_root, embed=embed,
                         check_images=check_images, skip_bad_images=skip_bad_images, drop_empty=drop_empty,
                         allow_outside_root=allow_outside_root, caption_column=caption_column, split=split,
                         progress=progress)
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
    console.print(f"wrote {summary['rows']} pairs to {summary['out']} (images {images})", highlight=False,
                  soft_wrap=True)
