"""`nctool review`: a local web page to review flagged pairs (or export the decisions, or a static gallery)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nctool.cli._ui import app, console, console_err, progress_bar
from nctool.cli.filter import ScoredDetector
from nctool.review.gallery import write_gallery
from nctool.review.server import bind, export, is_loopback, review_app, serve


@app.command()
def review(
    data: Annotated[Path, typer.Argument(help="Dataset Parquet the scores were made from.")],
    scores: Annotated[Path, typer.Option(help="Scores Parquet from `nctool score`.")],
    detector: Annotated[ScoredDetector, typer.Option(help="Whose scores to review.")] = ScoredDetector("rrsitr"),
    decisions: Annotated[Optional[Path], typer.Option(
        help="Decisions store (SQLite); default: beside the scores, SCORES.decisions.sqlite.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; anything but 127.0.0.1 opens the page "
                                           "(and the data) to other machines.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: a free one).")] = 8765,
    reviewer: Annotated[Optional[str], typer.Option(help="Name stored with each decision; default the OS user.")] = None,
    image_root: Annotated[Optional[Path], typer.Option(help="Folder for relative image paths.")] = None,
    export_to: Annotated[Optional[Path], typer.Option(
        "--export", help="Write the decisions to this Parquet file and exit (no server).")] = None,
    static: Annotated[Optional[Path], typer.Option(
        help="Write one self-contained HTML gallery of the lowest-reliability pairs here and exit (no server).")] = None,
    limit: Annotated[int, typer.Option(help="How many pairs the --static gallery shows.")] = 100,
) -> None:
    """Review flagged pairs in the browser: keep, drop or fix each; every decision is saved at once."""
    if export_to is not None:
        out = export(scores, export_to, decisions=decisions)
        console.print(f"decisions -> {out}")
        return
    if static is not None:
        with progress_bar() as progress:
            result = write_gallery(data, scores, static, detector=detector.value, limit=limit,
                                   image_root=image_root, progress=progress)
        console.print(f"gallery of {result['pairs']} pairs -> {result['out']}")
        return
    sock = bind(host, port)  # a taken port fails before the index is built
    review_page = review_app(data, scores, detector=detector.value, decisions=decisions, reviewer=reviewer,
                             image_root=image_root)
    if not is_loopback(host):
        console_err.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach this machine can see "
                          f"the data and record decisions (there is no login)")
    shown_host, shown_port = sock.getsockname()[:2]
    console.print(f"review {data} at http://{'[' + shown_host + ']' if ':' in shown_host else shown_host}:"
                  f"{shown_port}/  (Ctrl-C stops; decisions are saved as you make them)", markup=False, highlight=False)
    serve(review_page, sock)
