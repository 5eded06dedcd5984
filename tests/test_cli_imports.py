"""`nctool --help` stays fast: the modules the CLI imports at start leave torch and friends unloaded."""

import pkgutil
import subprocess
import sys

import nctool.cli

# each takes seconds to import; the CLI loads them only inside a command that needs them
HEAVY = ("torch", "open_clip", "sklearn", "scipy", "matplotlib")


def _heavy_after_import(*modules: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after importing `modules`."""
    code = (f"import sys\nfor name in {modules!r}: __import__(name)\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_cli_start_imports_without_torch():
    # nctool.cli.commands registers every command, so this is what `nctool --help` loads
    modules = ["nctool.cli", *(f"nctool.cli.{info.name}" for info in pkgutil.iter_modules(nctool.cli.__path__))]
    assert _heavy_after_import(*modules) == []
