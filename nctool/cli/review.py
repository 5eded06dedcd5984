"""`nctool review`: a local web page to review flagged pairs (or export the decisions, or a static gallery, or
hand the pairs to Label Studio and take its annotations back)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nctool.cli._ui import app, console, console_err, progress_bar, summary_table
from nctool.cli.filter import ScoredDetector
from nctool.curate.labelstudio import export_tasks, import_annotations
from nctool.curate.review.gallery import write_gallery
from nctool.curate.review.security import new_token
from nctool.curate.review.server import bind, decisions_file, export, findings, is_loopback, review_app, serve
from nctool.errors import NctoolError


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
    reviewer: Annotated[Optional[str], typer.Option(
        help="Name stored with each decision; default the OS user (with --import-label-studio: "
             "label-studio:ANNOTATOR).")] = None,
    image_root: Annotated[Optional[Path], typer.Option(help="Folder for relative image paths.")] = None,
    export_to: Annotated[Optional[Path], typer.Option(
        "--export", help="Write the decisions to this Parquet file and exit (no server).")] = None,
    static: Annotated[Optional[Path], typer.Option(
        help="Write one self-contained HTML gallery of the lowest-reliability pairs here and exit "
             "(no server).")] = None,
    limit: Annotated[Optional[int], typer.Option(
        help="How many pairs, lowest reliability first, the --static gallery shows (default 100) or "
             "--export-label-studio exports (default all).")] = None,
    export_label_studio: Annotated[Optional[Path], typer.Option(
        help="Write the scored pairs as Label Studio tasks (JSON) here, and the labeling config beside it "
             "(TASKS.label_config.xml), and exit (docs/label-studio.md).")] = None,
    label_studio_url: Annotated[Optional[str], typer.Option(
        help="With --export-label-studio: link each image as this URL prefix + its path under the image root "
             "instead of embedding it in the tasks file.")] = None,
    import_label_studio: Annotated[Optional[Path], typer.Option(
        help="Record the decisions of a Label Studio JSON export in the decisions store and exit.")] = None,
    blind: Annotated[bool, typer.Option(
        "--blind", help="Show only this reviewer's own decisions: a second, independent review of the same pairs "
                        "(e.g. the audit sample), whose agreement the first reviewer's page then reports.")] = False,
    no_token: Annotated[bool, typer.Option(
        "--no-token", help="Serve without the secret token in the printed URL (with a warning): any program on "
                           "this machine (with --host, any machine that reaches it) can then read the data and "
                           "record decisions.")] = False,
) -> None:
    """Review flagged pairs in the browser: keep, drop or fix each; every decision is saved at once."""
    if export_to is not None:
        out = export(scores, export_to, decisions=decisions, data=data)
        console.print(f"decisions -> {out}")
        try:  # the export is written; what its decisions say needs the data and scores too
            found = findings(data, scores, detector=detector.value, decisions=decisions)
        except NctoolError as exc:
            console_err.print(f"[yellow]note:[/] no audit or agreement line: {exc}", soft_wrap=True, highlight=False)
            return
        for line in (found["audit_text"], found["audit_labels_text"], found["agreement_text"]):
            if line:
                console.print(line, soft_wrap=True, highlight=False, markup=False)
        return
    if static is not None:
        with progress_bar() as progress:
            result = write_gallery(data, scores, static, detector=detector.value, image_root=image_root,
                                   progress=progress, **({} if limit is None else {"limit": limit}))
        console.print(f"gallery of {result['pairs']} pairs -> {result['out']}")
        return
    if export_label_studio is not None:
        with progress_bar() as progress:
            result = export_tasks(data, scores, export_label_studio, detector=detector.value, image_root=image_root,
                                  image_url=label_studio_url, limit=limit, progress=progress)
        size = f"{result['bytes'] / 1e6:.1f} MB" if result["bytes"] >= 1e6 else f"{result['bytes'] / 1e3:.0f} KB"
        console.print(f"{result['tasks']} Label Studio tasks ({size}) -> {result['out']}; "
                      f"labeling config -> {result['config']}", soft_wrap=True, highlight=False)
        return
    if import_label_studio is not None:
        result = import_annotations(data, scores, import_label_studio, decisions_file(scores, decisions),
                                    detector=detector.value, reviewer=reviewer)
        summary_table("label studio import", [{**result["recorded"], **{
            f"skipped {reason}": count for reason, count in result["skipped"].items()}}])
        console.print(f"{sum(result['recorded'].values())} decisions of {len(result['reviewers'])} reviewer(s) from "
                      f"{result['tasks']} tasks -> {result['store']}", soft_wrap=True, highlight=False)
        return
    sock = bind(host, port)  # a taken port fails before the index is built
    token = None if no_token else new_token()
    review_page = review_app(data, scores, detector=detector.value, decisions=decisions, reviewer=reviewer,
                             image_root=image_root, token=token, host=host, blind=blind)
    for note in review_page.state.notes:  # decisions made on another version of the data
        console_err.print(f"[yellow]warning:[/] {note}", soft_wrap=True, highlight=False)
    if no_token:
        console_err.print("[yellow]warning:[/] --no-token: any program on this machine, whoever runs it, can "
                          "read the data and record decisions (web pages still cannot)", soft_wrap=True)
    if not is_loopback(host):
        who = "whoever has the URL with its token" if token else "anyone who can reach this machine (there is no login)"
        console_err.print(f"[yellow]warning:[/] listening on {host}: {who} can see the data and record decisions",
                          soft_wrap=True)
    shown_host, shown_port = sock.getsockname()[:2]
    url = f"http://{'[' + shown_host + ']' if ':' in shown_host else shown_host}:{shown_port}/"
    console.print(f"review {data}; Ctrl-C stops; decisions are saved as you make them. Open:", soft_wrap=True,
                  markup=False, highlight=False)
    # the URL on a line of its own, never wrapped, whatever the terminal's width: it is clicked or copied
    console.print(url + (f"?token={token}" if token else ""), soft_wrap=True, markup=False, highlight=False)
    serve(review_page, sock)
