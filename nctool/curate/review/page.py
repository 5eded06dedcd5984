"""What the review page is told by the server: its keys, and the choices of its filters.

The one table of keys lives here: the page's key handler, the buttons on a card and in the grid's
selection bar and the help overlay (`?`) are all built from it (`/api/config`), so a key is defined
once. A command acts on the view the page shows: the cards (one pair at a time) or the grid (many
tiles; `a` / `d` act on the selected tiles as one bulk action when some are selected). The filter
choices come from their own homes: the labels from nctool.schema.LABELS, the decision states from
nctool.curate.review.queue.STATES (whose actions are nctool.data.decisions.ACTIONS), the orders from
nctool.curate.review.queue.ORDERS (explained here, in ORDER_HELP, for the order select's tooltips).
"""

from __future__ import annotations

from nctool.curate.review.learning import LEARN_EVERY, MIN_PER_CLASS
from nctool.curate.review.queue import DISAGREED, ORDERS, STATES
from nctool.data.decisions import ACTIONS
from nctool.schema import LABELS

KEYS = (
    # keys (KeyboardEvent.key values), how the help shows them, the page's command, the help text
    {"keys": ["j", "ArrowDown"], "shown": "j / \u2193", "command": "next",
     "help": "next pair (grid: the tile below)"},
    {"keys": ["k", "ArrowUp"], "shown": "k / \u2191", "command": "previous",
     "help": "previous pair (grid: the tile above)"},
    {"keys": ["l", "ArrowRight"], "shown": "l / \u2192", "command": "right", "help": "grid: the next tile"},
    {"keys": ["h", "ArrowLeft"], "shown": "h / \u2190", "command": "left", "help": "grid: the previous tile"},
    {"keys": ["a"], "shown": "a", "command": "keep",
     "help": "keep (the caption matches); grid: keep the selected tiles, one bulk action"},
    {"keys": ["d"], "shown": "d", "command": "drop",
     "help": "drop (the pair is noise); grid: drop the selected tiles, one bulk action"},
    {"keys": ["e"], "shown": "e", "command": "fix", "help": "fix: edit the caption (Enter saves, Esc cancels)"},
    {"keys": [str(n) for n in range(1, 10)], "shown": "1\u20139", "command": "accept",
     "help": "fix: accept suggested caption N"},
    {"keys": ["s"], "shown": "s", "command": "skip", "help": "skip to the next pair"},
    {"keys": ["u"], "shown": "u", "command": "undo", "help": "undo the last decision (a bulk action: all of it)"},
    {"keys": ["g"], "shown": "g", "command": "grid", "help": "switch between the cards and the grid"},
    {"keys": ["x", " "], "shown": "x / Space", "command": "select",
     "help": "grid: select or unselect the tile (click; shift-click selects a range)"},
    {"keys": ["v"], "shown": "v", "command": "select_undecided", "help": "grid: select every undecided tile shown"},
    {"keys": ["i"], "shown": "i", "command": "invert", "help": "grid: invert the selection of the tiles shown"},
    {"keys": ["r"], "shown": "r", "command": "rule",
     "help": "rule: drop the undecided pairs of this filter above a noisy probability (Enter previews)"},
    {"keys": ["o"], "shown": "o", "command": "enlarge", "help": "enlarge the image (Esc closes)"},
    {"keys": ["n"], "shown": "n", "command": "next_page", "help": "next page"},
    {"keys": ["p"], "shown": "p", "command": "previous_page", "help": "previous page"},
    {"keys": ["/"], "shown": "/", "command": "search", "help": "search captions"},
    {"keys": ["?"], "shown": "?", "command": "help", "help": "show or hide these keys"},
    {"keys": ["Escape"], "shown": "Esc", "command": "close",
     "help": "close the enlarged image or these keys; clear the selection"},
)
"""Every key of the page, in the order the help lists them."""

ORDER_HELP = {
    "noisiest": "lowest reliability first (the detector's order)",
    "learned": f"by a model of your own decisions, likeliest noise first (fitted after {LEARN_EVERY} decisions, "
               f"{MIN_PER_CLASS} of each kind; before that, by the detector's chance of noise)",
    "uncertain": "chance of noise nearest one half first: where your word changes the most",
    "category": "by scene class, noisiest first within one",
    "audit": "a uniform random sample, the same for every reviewer: decide its first pairs for an "
             "unbiased noise share",
}
"""Each of ORDERS in a line: the order select's tooltips."""


def page_config() -> dict:
    """The page's configuration (`/api/config`; the static gallery embeds it too)."""
    return {
        "keys": [dict(key) for key in KEYS],
        "labels": list(reversed(LABELS)),  # as the filter lists them: the noisiest first
        "states": [*STATES, DISAGREED],
        "orders": list(ORDERS),
        "order_help": {order: ORDER_HELP[order] for order in ORDERS},
        "actions": list(ACTIONS),
        "action_names": {action: state for state, action in STATES.items() if action is not None},
    }
