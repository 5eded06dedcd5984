"""Run the CLI in-process and capture its exit code and output."""

from __future__ import annotations

import subprocess
import sys


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """Run `nctool ARGS` in a subprocess (exactly as a user would), capturing output."""
    return subprocess.run([sys.executable, "-c", "from nctool.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env={**__import__("os").environ,
                                                                          "HF_HUB_OFFLINE": "1",
                                                                          "COLUMNS": "200"})
