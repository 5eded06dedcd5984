"""Shared CLI plumbing: the typer app, rich progress bars and summary tables."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Annotated, Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from nctool.progress import Progress

app = typer.Typer(
    name="nctool",
    help="Find and handle noisy correspondence in image-text datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
console_err = Console(stderr=True)


def _show_version(value: bool) -> None:
    if value:
        from nctool import __version__

        console.print(f"nctool {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                                   help="Show the version and exit.")] = False) -> None:
    """Find and handle noisy correspondence in image-text datasets."""


@contextmanager
def progress_bar() -> Iterator[Progress]:
    """A rich progress display; yields a callback the library calls as work advances.

    Each new description starts a new bar, so multi-stage work shows one bar per stage. The display
    opens at the first report, so a command that fails before any work prints only its error.
    """
    prog = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                        console=console_err, transient=False)
    tasks: dict[str, int] = {}

    def update(done: int, total: int, description: str = "working") -> None:
        if not tasks:
            prog.start()
        if description not in tasks:
            tasks[description] = prog.add_task(description, total=total)
        elif done < next(t.completed for t in prog.tasks if t.id == tasks[description]):
            prog.reset(tasks[description], total=total)  # the same stage again (next run of a bench)
        prog.update(tasks[description], completed=done, total=total)

    try:
        yield update
    finally:
        if tasks:
            prog.stop()


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
