"""Run the CLI as a user would (a subprocess) or in-process (typer's CliRunner, for flag mapping)."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """Run `nctool ARGS` in a subprocess (exactly as a user would), capturing output."""
    return subprocess.run([sys.executable, "-c", "from nctool.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"})


def invoke(*args: str):
    """Run `nctool ARGS` in-process with typer's CliRunner; returns its Result.

    Patch the library function a command calls (monkeypatch on the CLI module's name for it) to
    check which arguments each flag becomes. A NctoolError is left in `result.exception`.
    """
    import nctool.cli.commands  # noqa: F401  (registers every command)
    from nctool.cli._ui import app

    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def interrupted(*args, **kwargs):
    """A stand-in for a library call that the user stops with Ctrl-C."""
    raise KeyboardInterrupt
