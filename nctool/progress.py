"""How the library reports progress: a callback `progress(done, total, description)`.

The CLI passes one that draws rich progress bars; library code never prints.
"""

from __future__ import annotations

from typing import Callable

Progress = Callable[[int, int, str], None]


def silent(done: int, total: int, description: str) -> None:
    """The default callback: report nothing."""
