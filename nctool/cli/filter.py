"""`nctool filter`: drop the pairs a scores file labels noisy (or ambiguous, or below a reliability).

`--decisions` applies people's review decisions on top: they override the detector.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from nctool.cli._ui import app, console, console_err, summary_table
from nctool.curate.filtering import filter_file
from nctool.detect.detectors import detector_names
from nctool.schema import LABELS

Label = Enum("Label", {name: name for name in LABELS}, type=str)
ScoredDetector = Enum("ScoredDetector", {name: name for name in detector_names()}, type=str)


@app.command("filter")
def filter_command(
    data: Annotated[Path, typer.Argument(help="Dataset Parquet the scores were made from.")],
    scores: Annotated[Path, typer.Option(help="Scores Parquet from `nctool score`.")],
    out: Annotated[Path, typer.Option(help="Kept pairs: every dataset column plus the score columns.")],
    drop: Annotated[list[Label], typer.Option(help="Label to drop; repeatable.")] = [Label("noisy")],
    min_reliability: Annotated[Optional[float], typer.Option(
        help="Also drop scored pairs whose reliability is below this.")] = None,
    detector: Annotated[Optional[ScoredDetector], typer.Option(
        help="Whose scores, when the file holds several.")] = None,
    dropped: Annotated[Optional[Path], typer.Option(help="Also write the dropped pairs here, for review.")] = None,
    decisions: Annotated[Optional[Path], typer.Option(
        help="Review decisions (the .sqlite store of `nctool review`, or its Parquet export): keep, drop or "
             "fix a pair whatever the detector says.")] = None,
) -> None:
    """Keep the pairs a detector trusts. Splits that were not scored pass through untouched."""
    result = filter_file(data, scores, out=out, dropped=dropped, drop=[label.value for label in drop],
                         min_reliability=min_reliability, detector=detector.value if detector else None,
                         decisions=decisions)
    summary_table("filter", result["summary"])
    if result["decisions"] is not None:
        console.print(f"applied {sum(result['decisions'].values())} decisions ("
                      + ", ".join(f"{action} {count}" for action, count in result["decisions"].items()) + ")")
    for note in result.get("notes", []):
        console_err.print(f"[yellow]warning:[/] {note}", soft_wrap=True, highlight=False)
    console.print(f"kept {result['kept']} pairs -> {result['out']}; dropped {result['dropped']}"
                  + (f" -> {result['dropped_out']}" if result["dropped_out"] else ""))
