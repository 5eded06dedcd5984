"""`nctool review --static`: one self-contained HTML file of the lowest-reliability pairs.

The cards are drawn by the review page's own renderer (static/cards.js, inlined, read-only: no
keys, no buttons) from a JSON block of the file: the cards as `/api/queue` gives them (decisions
of the store beside the scores included) and each image once, as a data: URI. The stylesheet is
inlined too, so the file opens offline and can be attached to a ticket. A Content-Security-Policy
meta allows only the inlined script and style (by hash) and data: images. Every text from the data
is escaped: in the JSON block, `<`, `>` and `&` are \\u escapes; in the header, HTML-escaped; on
the page the renderer sets text with textContent only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from html import escape
from pathlib import Path

from nctool.curate.review.page import page_config
from nctool.curate.review.queue import ReviewQueue
from nctool.curate.review.thumbnails import Thumbnails
from nctool.data.decisions import default_decisions_path, read_decisions
from nctool.data.images import resolve_root
from nctool.errors import NctoolError
from nctool.progress import Progress, silent
from nctool.schema import atomic_path, check_output

STYLESHEET = Path(__file__).parent / "static" / "review.css"
RENDERER = Path(__file__).parent / "static" / "cards.js"


def write_gallery(data_path: str | os.PathLike, scores_path: str | os.PathLike, out: str | os.PathLike, *,
                  detector: str | None = None, limit: int = 100, image_root: str | os.PathLike | None = None,
                  progress: Progress = silent) -> dict:
    """Write the `limit` lowest-reliability pairs of one detector's scores to `out` as one HTML file.

    Parameters
    ----------
    data_path, scores_path
        The dataset and its scores (`nctool score`).
    out
        The HTML file; refused if it is a folder or one of the inputs. Written atomically.
    detector
        Whose scores; may be None when the file holds one detector.
    limit
        How many pairs, lowest reliability first (at least 1).
    image_root
        Folder for relative image paths (default: the dataset's own root).

    Returns `out` and `pairs` (how many pairs the gallery shows). A missing or unreadable image is
    refused with one NctoolError line naming its file.
    """
    out = check_output(out, data_path, scores_path)
    if limit < 1:
        raise NctoolError(f"limit {limit}: too small; show at least 1 pair")
    queue = ReviewQueue.load(data_path, scores_path, detector=detector)
    store = default_decisions_path(scores_path)
    if store.is_file():  # show the decisions made so far, as the review page would
        queue.load_decisions(read_decisions(store))
    thumbnails = Thumbnails(data_path, resolve_root(data_path, image_root))
    rows = queue.order[:limit]
    cards = [queue.card(int(row)) for row in rows]
    shown = list(dict.fromkeys(image_id for card in cards for image_id in
                               [card["image_id"], *(s["image_id"] for s in card.get("suggested_images", []))]))
    images = {}
    for done, image_id in enumerate(shown, 1):
        jpeg = thumbnails.jpeg(int(queue.rows_of_image[image_id][0]))
        images[image_id] = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
        progress(done, len(shown), "gallery")
    summary = queue.summary()
    title = f"{len(rows)} lowest-reliability pairs of {Path(data_path).name} ({summary['detector']})"
    data = _script_json({"config": page_config(), "cards": cards, "images": images})
    style, script = STYLESHEET.read_text(), RENDERER.read_text()
    policy = (f"default-src 'none'; img-src data:; style-src '{_sha256(style)}'; script-src '{_sha256(script)}'; "
              f"base-uri 'none'; form-action 'none'")
    page = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">\n<title>{escape(title)}</title>\n"
            f"<style>{style}</style></head>\n<body class=\"gallery\">\n"
            f"<header><div class=\"title\"><strong>{escape(title)}</strong></div>"
            f"<div class=\"stat\">{summary['pairs']} scored pairs. {escape(summary['noise_text'])}</div></header>\n"
            f"<main id=\"cards\"></main>\n"
            f"<script type=\"application/json\" id=\"gallery-data\">{data}</script>\n"
            f"<script>{script}</script>\n</body></html>\n")
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return {"out": out, "pairs": len(rows)}


def _script_json(value) -> str:
    """`value` as JSON that cannot end its <script> block or open a comment: <, > and & escaped."""
    return (json.dumps(value, ensure_ascii=False, allow_nan=False)
            .replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e"))


def _sha256(text: str) -> str:
    """A CSP source allowing one inline <script> or <style> whose content is `text`."""
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
