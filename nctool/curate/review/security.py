"""Who may use the review app: what a local web tool must refuse (as Jupyter does).

The app is reachable by every web page the curator's browser opens (a page can send requests to
127.0.0.1) and by every process on the machine. `Guard`, an ASGI middleware around the app, lets
through only:
- requests whose Host is a name the server was started for (127.0.0.1, localhost, [::1], the
  `--host` value; an IP address too when it listens on all interfaces): a name an attacker
  points at 127.0.0.1 (DNS rebinding) is refused on every route;
- to `/api/*`, requests with the launch's token (`X-Nctool-Token` header, or `?token=` where the
  page cannot set a header: images, the export link), and not from another site (Sec-Fetch-Site:
  an <img> of another loopback port is same-site, not same-origin);
- writes (any method but GET/HEAD) with the token in the header, `Content-Type: application/json`
  (no HTML form and no no-cors fetch can send it) and, when the browser says so, from the page's
  own origin (Origin, Sec-Fetch-Site).
Everything else gets 403 (415 for the content type) with {"error": ...}. Every response forbids
framing (clickjacking), script and style from anywhere but the server, sniffing and referrers.
"""

from __future__ import annotations

import ipaddress
import secrets

from starlette.datastructures import Headers, QueryParams
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_HEADER = "X-Nctool-Token"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "*"})
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_RAW_HEADERS = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]


def new_token() -> str:
    """A secret for one launch of the server (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def host_name(host: str) -> str:
    """The name in a Host header, without its port or IPv6 brackets, lower case ('[::1]:80' -> '::1')."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class Guard:
    """The ASGI middleware described above, for a server started for `host` with `token` (None: no token)."""

    def __init__(self, app: ASGIApp, *, host: str, token: str | None) -> None:
        self.app = app
        self.token = token
        self.hosts = LOOPBACK_NAMES | {host_name(host) if host.startswith("[") else host.lower()}
        self.any_address = host in WILDCARD_HOSTS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_RAW_HEADERS]}
            await send(message)

        refusal = self.refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send_secured)
        else:
            status, error = refusal
            await JSONResponse({"error": error}, status_code=status)(scope, receive, send_secured)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, why) for a request the app must not see, or None."""
        headers = Headers(scope=scope)
        name = host_name(headers.get("host", ""))
        if not (name in self.hosts or (self.any_address and _is_address(name))):
            return 403, (f"host '{headers.get('host', '')}': not a name this review server was started for; "
                         f"open the URL `nctool review` printed")
        path, write = scope["path"], scope["method"] not in ("GET", "HEAD")
        if not (write or path.startswith("/api/")):
            return None  # the page and its script and style hold no data
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return 403, f"a request from another site ({site}) is refused"
        if write:
            origin = headers.get("origin")
            if origin is not None and origin.lower() != f"http://{headers.get('host', '')}".lower():
                return 403, f"a write from another origin ({origin}) is refused"
            given = headers.get(TOKEN_HEADER)
        else:
            given = headers.get(TOKEN_HEADER) or QueryParams(scope["query_string"]).get("token")
        if self.token is not None and not secrets.compare_digest((given or "").encode(), self.token.encode()):
            return 403, (f"this request lacks the review's token ({TOKEN_HEADER} header"
                         f"{'' if write else ' or ?token='}); open the URL `nctool review` printed, with its ?token=")
        if write and headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return 415, "a write must be sent as Content-Type: application/json"
        return None
