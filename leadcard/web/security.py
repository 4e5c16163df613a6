"""Response headers and request limits for pages that live inside a Bitrix24 iframe.

- Framing is allowed by CSP `frame-ancestors` for the verified portal origin only; no
  `X-Frame-Options` (Bitrix24: local-integrations/site-does-not-allow-connection.md says
  ALLOW-FROM is dead and SAMEORIGIN breaks the tab).
- Scripts and styles: `'self'` plus a per-response nonce; no inline handlers.
- No cookies at all: each placement POST carries its own credential (threats.md §3.2).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

MAX_BODY_BYTES = 64 * 1024  # a frame POST is ~1 KB; 64 KB leaves room, 10 MB is refused
MAX_FORM_PARTS = 200

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")


def set_frame_origin(origin: str | None) -> None:
    """Name the origin that may frame this response (the verified portal)."""
    if origin and _ORIGIN.match(origin):
        g.frame_origin = origin


def claimed_origin() -> str | None:
    """The origin a frame POST *claims* (DOMAIN + PROTOCOL): used only for error pages,
    which carry no data, so the message shows inside the portal's frame."""
    domain = request.args.get("DOMAIN", "")
    scheme = "https" if request.args.get("PROTOCOL", "1") == "1" else "http"
    origin = f"{scheme}://{domain}"
    return origin if domain and _ORIGIN.match(origin) else None


def posted_value(name: str) -> str:
    """A form field of a POST, or "" — never raising, for code that runs after a request
    failed: when the body itself was the problem (too large, too many fields) it is not
    parsed again."""
    if request.method != "POST":
        return ""
    try:
        return request.form.get(name, "")
    except HTTPException:
        return ""


def csp_nonce() -> str:
    nonce = getattr(g, "csp_nonce", None)
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return nonce


# Pages kept for reuse (rendered.py) carry this in place of a nonce; each response replaces it
# with its own. Random per process and never sent, so no page content can spell it.
_NONCE_STAND_IN = "lc-nonce-" + secrets.token_hex(16)


def render_reusable(render: Callable[[], str]) -> str:
    """Run ``render`` with the nonce stand-in, for a page that later responses may reuse."""
    own = g.pop("csp_nonce", None)
    g.csp_nonce = _NONCE_STAND_IN
    try:
        return render()
    finally:
        g.pop("csp_nonce", None)
        if own is not None:
            g.csp_nonce = own


def with_own_nonce(html: str) -> str:
    """A reusable page with this response's nonce (the one its CSP header names)."""
    return html.replace(_NONCE_STAND_IN, csp_nonce())


def init_app(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_BODY_BYTES
    app.config["MAX_FORM_PARTS"] = MAX_FORM_PARTS
    app.config["AVATAR_ANY_HTTPS"] = True  # matches img-src below
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.before_request
    def _request_id() -> None:
        g.request_id = uuid.uuid4().hex[:12]

    @app.after_request
    def _headers(response: Response) -> Response:
        origin = getattr(g, "frame_origin", None)
        nonce = csp_nonce()
        # User photos: Bitrix24 cloud serves them from CDN hosts, not the portal origin;
        # images cannot run script, so any https source is allowed for <img>.
        img = f"'self' data: https: {origin}" if origin else "'self' data: https:"
        response.headers["Content-Security-Policy"] = "; ".join(
            [
                "default-src 'none'",
                f"script-src 'self' 'nonce-{nonce}'",
                f"style-src 'self' 'nonce-{nonce}'",
                f"img-src {img}",
                "connect-src 'self'",
                f"frame-ancestors {origin or chr(39) + 'none' + chr(39)}",
                "base-uri 'none'",
                "form-action 'self'" + (f" {origin}" if origin else ""),
            ]
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.pop("X-Frame-Options", None)
        response.headers.pop("Set-Cookie", None)
        # Static files are answered by static_files.StaticFiles before Flask sees them; what
        # reaches Flask under /static/ is a file added since start-up (Flask's own
        # revalidated answer) or an error page, which is no-store like every page.
        if not (request.path.startswith("/static/") and response.status_code in (200, 304)):
            # Pages are no-store; a public page without portal data (views/legal.py) names
            # its own policy, for its 200 answers only.
            own = getattr(g, "cache_control", None) if response.status_code == 200 else None
            response.headers["Cache-Control"] = own or "no-store"
            if own and getattr(g, "vary", None):
                response.vary.add(g.vary)
        response.headers["X-Request-Id"] = getattr(g, "request_id", "")
        return response
