"""`nctool filter`: drop the pairs a scores file labels noisy (or ambiguous, or below a reliability)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nctool.cli._ui import app, console, summary_table
from nctool.filtering import filter_pairs, read_scores
from nctool.schema import image_root, read_table, write_table


@app.command("filter")
def filter_command(
    data: Path = typer.Argument(..., help="Dataset Parquet the scores were made from."),
    scores: Path = typer.Option(..., "--scores", help="Scores Parquet from `nctool score`."),
    out: Path = typer.Option(..., "--out", help="Kept pairs: every dataset column plus the score columns."),
    drop: list[str] = typer.Option(["noisy"], "--drop", help="Label to drop: noisy, ambiguous or clean; repeatable."),
    min_reliability: Optional[float] = typer.Option(None, "--min-reliability",
                                                    help="Also drop scored pairs whose reliability is below this."),
    detector: Optional[str] = typer.Option(None, "--detector", help="Whose scores, when the file holds several."),
    dropped: Optional[Path] = typer.Option(None, "--dropped", help="Also write the dropped pairs here, for review."),
) -> None:
    """Keep the pairs a detector trusts. Splits that were not scored pass through untouched."""
    result = filter_pairs(read_table(data), read_scores(scores), drop=drop, min_reliability=min_reliability,
                          detector=detector)
    root = image_root(data)  # the outputs may live elsewhere: keep relative image paths resolvable
    write_table(result.kept, out, image_root=root)
    if dropped is not None:
        write_table(result.dropped, dropped, image_root=root)
    summary_table("filter", result.summary)
    console.print(f"kept {len(result.kept)} pairs -> {out}"
                  + (f"; dropped {len(result.dropped)} -> {dropped}" if dropped is not None else
                     f"; dropped {len(result.dropped)}"))
