"""What the review page is told by the server: its keys, and the choices of its filters.

The one table of keys lives here: the page's key handler, the buttons on a card and the help
overlay (`?`) are all built from it (`/api/config`), so a key is defined once. The filter choices
come from their own homes: the labels from nctool.schema.LABELS, the decision states from
nctool.curate.review.queue.STATES (whose actions are nctool.data.decisions.ACTIONS), the orders from
nctool.curate.review.queue.ORDERS.
"""

from __future__ import annotations

from nctool.curate.review.queue import DISAGREED, ORDERS, STATES
from nctool.data.decisions import ACTIONS
from nctool.schema import LABELS

KEYS = (
    # keys (KeyboardEvent.key values), how the help shows them, the page's command, the help text
    {"keys": ["j", "ArrowDown"], "shown": "j / \u2193", "command": "next", "help": "next pair"},
    {"keys": ["k", "ArrowUp"], "shown": "k / \u2191", "command": "previous", "help": "previous pair"},
    {"keys": ["a"], "shown": "a", "command": "keep", "help": "keep (the caption matches)"},
    {"keys": ["d"], "shown": "d", "command": "drop", "help": "drop (the pair is noise)"},
    {"keys": ["e"], "shown": "e", "command": "fix", "help": "fix: edit the caption (Enter saves, Esc cancels)"},
    {"keys": [str(n) for n in range(1, 10)], "shown": "1\u20139", "command": "accept",
     "help": "fix: accept suggested caption N"},
    {"keys": ["s"], "shown": "s", "command": "skip", "help": "skip to the next pair"},
    {"keys": ["u"], "shown": "u", "command": "undo", "help": "undo the last decision"},
    {"keys": ["o"], "shown": "o", "command": "enlarge", "help": "enlarge the image (Esc closes)"},
    {"keys": ["n"], "shown": "n", "command": "next_page", "help": "next page"},
    {"keys": ["p"], "shown": "p", "command": "previous_page", "help": "previous page"},
    {"keys": ["/"], "shown": "/", "command": "search", "help": "search captions"},
    {"keys": ["?"], "shown": "?", "command": "help", "help": "show or hide these keys"},
    {"keys": ["Escape"], "shown": "Esc", "command": "close", "help": "close the enlarged image or these keys"},
)
"""Every key of the page, in the order the help lists them."""


def page_config() -> dict:
    """The page's configuration (`/api/config`; the static gallery embeds it too)."""
    return {
        "keys": [dict(key) for key in KEYS],
        "labels": list(reversed(LABELS)),  # as the filter lists them: the noisiest first
        "states": [*STATES, DISAGREED],
        "orders": list(ORDERS),
        "actions": list(ACTIONS),
        "action_names": {action: state for state, action in STATES.items() if action is not None},
    }
