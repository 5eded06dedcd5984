"""Shared CLI plumbing: the typer app, rich progress bars and summary tables."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

app = typer.Typer(
    name="nctool",
    help="Find and handle noisy correspondence in image-text datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
console_err = Console(stderr=True)

# Library functions report progress through a callback: progress(done, total, description).
ProgressFn = Callable[[int, int, str], None]


@contextmanager
def progress_bar() -> Iterator[ProgressFn]:
    """A rich progress display; yields a callback the library calls as work advances.

    Each new description starts a new bar, so multi-stage work shows one bar per stage.
    """
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                  console=console_err, transient=False) as prog:
        tasks: dict[str, int] = {}

        def update(done: int, total: int, description: str = "working") -> None:
            if description not in tasks:
                tasks[description] = prog.add_task(description, total=total)
            elif done < next(t.completed for t in prog.tasks if t.id == tasks[description]):
                prog.reset(tasks[description], total=total)  # the same stage again (next run of a bench)
            prog.update(tasks[description], completed=done, total=total)

        yield update


def summary_table(title: str, rows: list[dict], columns: list[str] | None = None) -> None:
    """Print a short table of results (list of dicts, one per row)."""
    if not rows:
        return
    columns = columns or list(rows[0])
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, justify="left" if isinstance(rows[0].get(col), str) else "right")
    for row in rows:
        table.add_row(*(_fmt(row.get(col)) for col in columns))
    console.print(table)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)
