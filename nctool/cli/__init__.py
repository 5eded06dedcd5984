"""The `nctool` command line: thin typer commands, one library call each.

Each command lives in its own module under nctool/cli/, registers itself on the shared `app`
(nctool/cli/_ui.py), and is imported by nctool/cli/commands.py.
"""

from __future__ import annotations

import logging
import sys

from nctool.cli._ui import app, console_err
from nctool.errors import NctoolError


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one red line and exit code 2, never a traceback."""
    import nctool.cli.commands  # noqa: F401  (registers every command on `app`)

    # open_clip logs through the root logger ("No pretrained weights loaded..." for a random init);
    # nctool reports what matters itself
    logging.getLogger().setLevel(logging.ERROR)

    try:
        app(args=argv)  # standalone: typer shows usage errors as one line and exits 2 itself
    except NctoolError as exc:
        console_err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
