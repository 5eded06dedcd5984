"""The one exception type the CLI turns into a one-line message (no traceback)."""


class NctoolError(Exception):
    """A user-facing error: the message names the thing that is wrong and how to fix it."""
