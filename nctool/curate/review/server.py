"""The review web app (Starlette) and serving it with uvicorn.

Routes: `/` the page and `/static/*` its scripts and style; `/api/config` its keys and filter choices
(nctool.curate.review.page); `/api/summary` the header;
`/api/queue` a page of cards (filters `label`, `category`, `state`, `q`; `order`; `offset`, `limit`,
`resume`); `/api/rule` what a bulk rule covers (the filters and `min_noisy_probability`: its pair count
and expected noise); `/api/image/{pair_id}` a resized JPEG (`?size=large` for the enlarged view);
`POST /api/decision` {pair_id, action, new_caption?}; `POST /api/bulk` {action, pair_ids} (the
selected pairs) or {action, rule: {filters, min_noisy_probability}, expect} (a rule, refused when it
no longer covers `expect` pairs); `POST /api/undo` {pair_id?} (this reviewer's newest decision, of
the pair: a whole bulk action when it was part of one); `/api/export` the decisions as a Parquet download.

Safety: `nctool.curate.review.security.Guard` wraps the app: only the host names the server was started
for, the launch's token on `/api/*` (header, or `?token=` for reads), writes only as
application/json from the page's own origin with the token in the `X-Nctool-Token` header, and
headers that forbid framing and foreign script on every response. A write's body is at most
64 KiB, a string in it at most 10,000 characters, valid UTF-8 without lone surrogates. Images are
looked up by pair_id in the index, so no part of a request becomes a file path; a request the app
cannot use gets a 4xx with {"error": ...} (an unexpected failure a 500 with one, never a
traceback) and the server keeps running. Every decision is in the DecisionStore (on disk) before
the response is sent; the response carries the pair's current decision, so a tab always shows the
last write, whichever tab made it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from nctool.curate.review.learning import warm_up
from nctool.curate.review.page import page_config
from nctool.curate.review.queue import ReviewQueue
from nctool.curate.review.security import SECURITY_HEADERS, Guard
from nctool.curate.review.thumbnails import SIZES, Thumbnails
from nctool.data.decisions import DecisionStore, default_decisions_path, export_decisions, read_decisions
from nctool.data.images import BadImage, resolve_root
from nctool.errors import NctoolError
from nctool.schema import check_output

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024  # bytes of a request body: a decision is a few hundred
MAX_STRING = 10_000  # characters of a string in a body (a caption)
MAX_BULK = 1_000  # pairs a bulk action may name one by one (a rule may cover any number)


def decisions_file(scores_path: str | os.PathLike, decisions: str | os.PathLike | None) -> Path:
    """The decisions store a review uses: `decisions`, else the one beside the scores file."""
    return Path(decisions) if decisions is not None else default_decisions_path(scores_path)


def export(scores_path: str | os.PathLike, out: str | os.PathLike, *,
           decisions: str | os.PathLike | None = None, data: str | os.PathLike | None = None) -> Path:
    """Write the decisions of a review (`decisions`, default beside the scores) to `out` as Parquet.

    `out` is refused before anything is read when it is one of the review's files (`data`, the
    scores, the store) or cannot be written (nctool.schema.check_output).
    """
    store_path = decisions_file(scores_path, decisions)
    check_output(out, data, scores_path, store_path)
    if not store_path.is_file():
        raise NctoolError(f"{store_path}: no decisions file there; review first with `nctool review`, "
                          f"or pass the file with --decisions")
    return export_decisions(store_path, out)


def findings(data_path: str | os.PathLike, scores_path: str | os.PathLike, *, detector: str | None = None,
             decisions: str | os.PathLike | None = None) -> dict:
    """What a review's decisions say (ReviewQueue.findings: the audited share, two reviewers' agreement, the
    learner), read without writing anything: what `nctool review --export` prints beside the export."""
    queue = ReviewQueue.load(data_path, scores_path, detector=detector)
    store_path = decisions_file(scores_path, decisions)
    queue.load_decisions(read_decisions(store_path), read_decisions(store_path, by_reviewer=True))
    return queue.findings()


def review_app(data_path: str | os.PathLike, scores_path: str | os.PathLike, *, detector: str | None = None,
               decisions: str | os.PathLike | None = None, reviewer: str | None = None,
               image_root: str | os.PathLike | None = None, token: str | None,
               host: str = "127.0.0.1", blind: bool = False) -> Starlette:
    """The review app over a dataset and its scores; decisions go to `decisions` (default beside the scores).

    `token` is the launch's secret every `/api/*` request must carry (None: none, `--no-token`);
    `host` the address it listens on, whose name is allowed in the Host header besides loopback;
    `blind`: show the reviewer only their own decisions (a second, independent review).
    Builds the queue's index (no image is decoded) and opens the decisions store, so bad inputs are
    refused here with one NctoolError line, before anything is served. The store is closed when the
    app shuts down.
    """
    queue = ReviewQueue.load(data_path, scores_path, detector=detector)
    thumbnails = Thumbnails(data_path, resolve_root(data_path, image_root))
    store = DecisionStore(decisions_file(scores_path, decisions), reviewer=reviewer)
    queue.blind = store.reviewer if blind else None
    warm_up()
    stale = queue.sync(store)
    app = _app(queue, thumbnails, store, Middleware(Guard, host=host, token=token))
    app.state.notes = [stale] if stale else []  # decisions not shown (another version of the pair): the CLI warns
    return app


def _app(queue: ReviewQueue, thumbnails: Thumbnails, store: DecisionStore, guard: Middleware) -> Starlette:
    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def summary(request: Request) -> Response:
        await run_in_threadpool(queue.sync, store)  # other reviewers may write to the same store
        return JSONResponse(queue.summary())

    async def config(request: Request) -> Response:
        return JSONResponse(page_config())

    async def cards(request: Request) -> Response:
        params = request.query_params
        page = queue.page(offset=_int(params, "offset", 0), limit=_int(params, "limit", 50),
                          resume=params.get("resume") in ("1", "true"), **_filters(params))
        return JSONResponse(page)

    async def rule(request: Request) -> Response:
        covered = queue.rule(min_noisy_probability=_float(request.query_params, "min_noisy_probability"),
                             **_filters(request.query_params))
        return JSONResponse({name: value for name, value in covered.items() if name != "pair_ids"})

    async def image(request: Request) -> Response:
        row = queue.row_of.get(request.path_params["pair_id"])
        size = request.query_params.get("size", "thumb")
        if row is None:
            raise HTTPException(404, "no such pair")
        if size not in SIZES:
            raise HTTPException(400, f"size '{size}': unknown; choose from {', '.join(SIZES)}")
        # siblings share a cache entry
        first_row_of_image = int(queue.rows_of_image[queue.pairs["image_id"].iat[row]][0])
        try:
            jpeg = await run_in_threadpool(thumbnails.jpeg, first_row_of_image, size)
        except BadImage as exc:
            raise HTTPException(404, str(exc)) from None
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    async def decide(request: Request) -> Response:
        body = await _json_object(request)
        pair_id = _known_pair(body.get("pair_id"))
        new_caption = body.get("new_caption")
        if not isinstance(body.get("action"), str) or not (new_caption is None or isinstance(new_caption, str)):
            raise HTTPException(422, "action must be a string and new_caption a string or null")
        await run_in_threadpool(store.record, pair_id, body["action"], new_caption=new_caption,
                                row_hash=queue.row_hash(pair_id))
        await run_in_threadpool(queue.sync, store, [pair_id])
        return JSONResponse({"pair_id": pair_id, "decision": queue.decisions.get(pair_id), "summary": queue.summary()})

    async def bulk(request: Request) -> Response:
        body = await _json_object(request)
        if not isinstance(body.get("action"), str):
            raise HTTPException(422, "action must be a string")
        if body.get("rule") is not None:
            if not isinstance(body["rule"], dict) or not isinstance(body.get("expect"), int):
                raise HTTPException(422, "a rule is an object of filters and min_noisy_probability, sent with the "
                                         "pair count it was shown to cover as expect")
            covered = queue.rule(min_noisy_probability=_float(body["rule"], "min_noisy_probability"),
                                 **_filters(body["rule"]))
            if covered["pairs"] != body["expect"]:
                raise HTTPException(409, f"the rule now covers {covered['pairs']} pairs, not {body['expect']} "
                                         f"(decisions were made meanwhile); look at it again before deciding")
            pair_ids, rule_text = covered["pair_ids"], covered["rule"]
        else:
            pair_ids = body.get("pair_ids")
            if not isinstance(pair_ids, list) or not 1 <= len(pair_ids) <= MAX_BULK:
                raise HTTPException(422, f"pair_ids must be a list of 1 to {MAX_BULK} pair ids, or send a rule")
            pair_ids = [_known_pair(pair_id) for pair_id in pair_ids]
            rule_text = f"{len(pair_ids)} selected pairs"
        batch = await run_in_threadpool(store.record_many, pair_ids, body["action"], rule=rule_text,
                                        row_hashes=[queue.row_hash(pair_id) for pair_id in pair_ids])
        await run_in_threadpool(queue.sync, store, pair_ids)
        return JSONResponse({"batch": batch, "pair_ids": pair_ids, "summary": queue.summary(),
                             "decisions": {pair_id: queue.decisions.get(pair_id) for pair_id in pair_ids}})

    async def undo(request: Request) -> Response:
        body = await _json_object(request)
        pair_id = _known_pair(body["pair_id"]) if body.get("pair_id") is not None else None
        pair_ids = await run_in_threadpool(store.undo, pair_id, reviewer=store.reviewer)
        await run_in_threadpool(queue.sync, store, pair_ids)  # a store shared with another review may hold others
        # a pair's decision is None when what is left was made on another version of the pair
        return JSONResponse({"pair_ids": pair_ids, "summary": queue.summary(),
                             "decisions": {pair_id: queue.decisions.get(pair_id) for pair_id in pair_ids}})

    async def export(request: Request) -> Response:
        with tempfile.TemporaryDirectory() as folder:
            # through the store's own connection: opening the file again here would drop this process's locks
            out = await run_in_threadpool(store.export, Path(folder) / "decisions.parquet")
            content = out.read_bytes()
        return Response(content, media_type="application/vnd.apache.parquet",
                        headers={"Content-Disposition": 'attachment; filename="decisions.parquet"'})

    def _known_pair(pair_id) -> str:
        if not isinstance(pair_id, str):
            raise HTTPException(422, "pair_id must be a string")
        if pair_id not in queue.row_of:
            raise HTTPException(404, "no such pair")
        return pair_id

    async def user_error(request: Request, exc: NctoolError) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=422)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    async def server_error(request: Request, exc: Exception) -> Response:
        # answered outside the Guard (Starlette's outermost layer): the security headers are set here
        return JSONResponse({"error": "the review server failed on this request; its terminal shows why"},
                            status_code=500, headers=SECURITY_HEADERS)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        store.close()

    routes = [Route("/", page), Route("/api/summary", summary), Route("/api/config", config),
              Route("/api/queue", cards), Route("/api/image/{pair_id:path}", image),
              Route("/api/rule", rule), Route("/api/decision", decide, methods=["POST"]),
              Route("/api/bulk", bulk, methods=["POST"]), Route("/api/undo", undo, methods=["POST"]),
              Route("/api/export", export),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[guard],
                     exception_handlers={NctoolError: user_error, HTTPException: http_error,
                                         Exception: server_error})


async def _json_object(request: Request) -> dict:
    """The body of a write as a JSON object: at most MAX_BODY bytes, strings of at most MAX_STRING
    characters, UTF-8 that SQLite can store (no lone surrogates, not even as \\ud800 escapes)."""
    too_big = HTTPException(413, f"the request body is over {MAX_BODY // 1024} KiB")
    try:
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            raise too_big
    except ValueError:
        raise HTTPException(400, "Content-Length is not a number") from None
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise too_big
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
        json.dumps(body, ensure_ascii=False).encode("utf-8")  # a lone surrogate cannot be encoded
    except (ValueError, UnicodeError, RecursionError):
        raise HTTPException(400, "the request body is not JSON in UTF-8 (or nests too deep)") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the request body must be a JSON object")
    if any(isinstance(value, str) and len(value) > MAX_STRING for value in body.values()):
        raise HTTPException(413, f"a text in the request is over {MAX_STRING:,} characters")
    return body


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _filters(params) -> dict:
    """The queue's filters and order from a query string or a rule object (empty: not given)."""
    filters = {name: params.get(key) or None for name, key in
               (("label", "label"), ("category", "category"), ("state", "state"), ("text", "q"), ("order", "order"))}
    if any(value is not None and not isinstance(value, str) for value in filters.values()):
        raise HTTPException(422, "filters must be strings")
    return {name: value for name, value in filters.items() if value is not None}


def _float(params, name: str) -> float:
    value = params.get(name)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise HTTPException(400, f"{name} {value!r}: not a number") from None


def _int(params, name: str, default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise HTTPException(400, f"{name} '{value}': not a whole number") from None


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); refuses a taken port with one line."""
    if not 0 <= port <= 65535:
        raise NctoolError(f"--port {port}: not a port; choose one from 1 to 65535 (0: a free one)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise NctoolError(f"{host}:{port}: cannot listen there ({exc.strerror}); pass another --port "
                          f"(or --host)") from None
    sock.listen(128)
    return sock


def serve(app: Starlette, sock: socket.socket) -> None:
    """Serve `app` on a socket from `bind` until interrupted (Ctrl-C)."""
    import uvicorn

    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
