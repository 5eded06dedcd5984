"""`nctool review --static`: one self-contained HTML file of the lowest-reliability pairs.

Thumbnails are embedded as data: URIs and the page's stylesheet is inlined, so the file opens
offline and can be attached to a ticket. Every text from the data is HTML-escaped.
"""

from __future__ import annotations

import base64
import os
from html import escape
from pathlib import Path

from nctool.errors import NctoolError
from nctool.data.images import resolve_root
from nctool.progress import Progress, silent
from nctool.curate.review.queue import ReviewQueue
from nctool.curate.review.thumbnails import Thumbnails
from nctool.schema import atomic_path, check_output

STYLESHEET = Path(__file__).parent / "static" / "review.css"


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
    thumbnails = Thumbnails(data_path, resolve_root(data_path, image_root))
    rows = queue.order[:limit]
    cards = []
    for done, row in enumerate(rows, 1):
        image = base64.b64encode(thumbnails.jpeg(int(row))).decode("ascii")
        cards.append(_card(queue.card(int(row)), image))
        progress(done, len(rows), "gallery")
    summary = queue.summary()
    title = f"{len(rows)} lowest-reliability pairs of {Path(data_path).name} ({summary['detector']})"
    page = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>\n"
            f"<style>{STYLESHEET.read_text()}</style></head>\n<body class=\"gallery\">\n"
            f"<header><div class=\"title\"><strong>{escape(title)}</strong></div>"
            f"<div class=\"stat\">{summary['pairs']} scored pairs, "
            f"estimated noise {100 * summary['noise_share']:.1f} %</div></header>\n"
            f"<main id=\"cards\">\n{''.join(cards)}</main>\n</body></html>\n")
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return {"out": out, "pairs": len(rows)}


def _card(card: dict, jpeg_base64: str) -> str:
    facts = [f"<span class=\"label label-{escape(card['label'])}\">{escape(card['label'])}</span>",
             f"<span>reliability {card['reliability']:.4f}</span>",
             *(f"<span>{escape(str(card[name]))}</span>" for name in ("category", "split", "pair_id") if card[name]),
             *([f"<span class=\"truth\">{'truly noisy' if card['noisy'] else 'truly clean'}</span>"]
               if card["noisy"] is not None else []),
             *(f"<span class=\"evidence\">{escape(name)} {value:.4g}</span>" for name, value in card["evidence"].items())]
    parts = [f"<article class=\"card\"><img class=\"thumb\" alt=\"image {escape(card['image_id'])}\" "
             f"src=\"data:image/jpeg;base64,{jpeg_base64}\"><div class=\"body\">",
             f"<p class=\"caption\">{escape(card['caption'])}</p>", f"<p class=\"facts\">{''.join(facts)}</p>"]
    for heading, items, tag in (("other captions of this image", card["siblings"], "ul"),
                                ("suggested captions", card.get("suggested_captions", []), "ol")):
        if items:
            entries = "".join(f"<li>{escape(item['caption'])}</li>" for item in items)
            parts.append(f"<h3>{heading}</h3><{tag} class=\"siblings\">{entries}</{tag}>")
    parts.append("</div></article>\n")
    return "".join(parts)
