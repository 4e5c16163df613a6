"""Static files: served in front of Flask by WhiteNoise, compressed, cached by version.

``wrap(app, cache_dir)`` puts :class:`StaticFiles` around ``app.wsgi_app``. For a file
under ``static/`` it owns the whole response:

* **caching**: every page links a file as ``/static/<file>?v=<version>``
  (``frontend.static_url``; ``version_of`` is the one place that version is computed).
  A request whose ``v`` is the version of the bytes this process serves gets
  ``Cache-Control: public, max-age=31536000, immutable``; any other request (no ``v``,
  or a ``v`` of another deploy's file) gets ``no-cache``, so a browser revalidates and a
  deploy never leaves old bytes cached under a new version, nor new bytes under an old one.
  The ETag is the content hash (the same on every host, unlike an mtime), so a
  revalidation that finds the same bytes answers 304;
* **compression**: gzip and brotli variants of the text files, chosen by
  ``Accept-Encoding`` (``Vary: Accept-Encoding``; ``Content-Length`` is the variant's).
  They are made once per file content and kept outside the repository in ``cache_dir``
  (the instance folder), named by the source's SHA-256, so a variant always belongs to
  the bytes it was made from. Subresource Integrity is over the decoded bytes, so the
  vendored SDK's ``integrity=`` holds for every encoding;
* **headers**: what ``security.py`` sets on pages that matters for a file (nosniff, no
  referrer, a CSP that lets nothing run if a file is opened as a document); no cookies.

A path WhiteNoise does not know (a missing file) falls through to Flask, whose error page
is ``no-store`` like every page (``security.py``). Files are listed at start-up, so a
deploy restarts the workers (gunicorn does); in debug mode the files are re-read on every
request instead (``autorefresh``).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from wsgiref.headers import Headers

import brotli
from flask import Flask
from whitenoise import WhiteNoise
from whitenoise.responders import FileEntry, StaticFile

log = logging.getLogger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Nothing in a static file may run or be framed if it is ever opened as a document.
STATIC_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", STATIC_CSP),
)
COMPRESSIBLE = frozenset({".css", ".js", ".mjs", ".json", ".map", ".svg", ".txt", ".html"})
MIN_COMPRESS_BYTES = 1024  # below this, the headers cost more than compression saves
ENCODINGS = {"br": ".br", "gzip": ".gz"}
# The vendored licence texts (THIRD_PARTY_NOTICES.md links them) read in a browser tab
# rather than download as application/octet-stream.
MEDIA_TYPES = {".license": "text/plain"}
STALE_VARIANT_SECONDS = 7 * 24 * 3600  # variants of files no longer shipped, pruned after

StartResponse = Callable[..., Any]


@lru_cache(maxsize=256)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def content_hash(path: str) -> str:
    """SHA-256 (hex) of a file's bytes, recomputed only when its mtime or size changes."""
    stat = os.stat(path)
    return _digest(path, stat.st_mtime_ns, stat.st_size)


def version_of(path: str) -> str:
    """The ``?v=`` of a static file: the first 12 hex digits of its SHA-256."""
    return content_hash(path)[:12]


def _compress(data: bytes, encoding: str) -> bytes:
    if encoding == "br":
        return brotli.compress(data, quality=11)  # once per file content: the best ratio
    return gzip.compress(data, compresslevel=9, mtime=0)  # mtime=0: the same bytes every time


class VariantCache:
    """Compressed copies of static files in one directory, named ``<sha256>.<br|gz>``.

    Made on first need and written atomically (temp file + rename), so workers starting
    together never see half a file; a process keeps what it compressed in memory, so the
    apps a test run builds with fresh instance folders compress each file once.
    """

    _made: dict[tuple[str, str], bytes] = {}

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def variants(self, path: str, digest: str) -> dict[str, str]:
        """encoding → file for the compressed copies of ``path`` (whose SHA-256 is ``digest``)."""
        if os.path.splitext(path)[1].lower() not in COMPRESSIBLE:
            return {}
        if os.path.getsize(path) < MIN_COMPRESS_BYTES:
            return {}
        found = {}
        for encoding, suffix in ENCODINGS.items():
            target = os.path.join(self.directory, digest + suffix)
            try:
                if not os.path.isfile(target):
                    self._write(target, self._variant(path, digest, encoding))
            except OSError as exc:
                log.warning("static %s: no %s variant (%s)", path, encoding, exc)
                continue
            found[encoding] = target
        return found

    def _variant(self, path: str, digest: str, encoding: str) -> bytes:
        key = (digest, encoding)
        if key not in self._made:
            if len(self._made) >= 64:  # debug-mode edits make new contents; keep it bounded
                self._made.clear()
            data = Path(path).read_bytes()
            if hashlib.sha256(data).hexdigest() != digest:
                raise OSError(f"{path} changed while it was being compressed")
            self._made[key] = _compress(data, encoding)
        return self._made[key]

    def _write(self, target: str, data: bytes) -> None:
        os.makedirs(self.directory, exist_ok=True)
        temp = f"{target}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            with open(temp, "wb") as fh:
                fh.write(data)
            os.replace(temp, target)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)

    def prune(self, keep: Iterable[str]) -> None:
        """Remove variants of no current file that are older than a week."""
        wanted = set(keep)
        cutoff = time.time() - STALE_VARIANT_SECONDS
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return
        for entry in entries:
            try:
                if entry.path not in wanted and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                continue


class StaticFiles(WhiteNoise):
    """WhiteNoise with versioned caching, content ETags and variants from a ``VariantCache``."""

    def __init__(self, application: Any, root: str, cache_dir: str, *, autorefresh: bool) -> None:
        self.variant_cache = VariantCache(cache_dir)
        super().__init__(
            application, autorefresh=autorefresh, max_age=None, allow_all_origins=False,
            mimetypes=MEDIA_TYPES,
        )
        self.add_files(root, prefix="static/")
        if not autorefresh:
            keep = (p for f in self.files.values() for p in getattr(f, "variant_paths", ()))
            self.variant_cache.prune(keep)

    def get_static_file(self, path: str, url: str, stat_cache: Any = None) -> StaticFile:
        FileEntry(path, stat_cache)  # raises MissingFileError / IsDirectoryError as WhiteNoise expects
        digest = content_hash(path)
        headers = Headers([])
        media_type = self.media_types.get_type(path)
        charset = "; charset=utf-8" if media_type.startswith("text/") else ""
        headers["Content-Type"] = media_type + charset  # as Flask wrote it (WhiteNoise quotes it)
        headers["Cache-Control"] = REVALIDATE  # serve() decides per request
        headers["ETag"] = f'"{digest[:32]}"'
        variants = self.variant_cache.variants(path, digest)
        # No stat_cache: it lists only files under static/, and the variants live elsewhere.
        static_file = StaticFile(path, headers.items(), encodings=variants)
        static_file.version = digest[:12]
        static_file.variant_paths = tuple(variants.values())
        return static_file

    def serve(self, static_file: Any, environ: dict, start_response: StartResponse) -> Any:
        version = getattr(static_file, "version", None)
        asked = parse_qs(environ.get("QUERY_STRING", "")).get("v")
        cache_control = IMMUTABLE if version and asked == [version] else REVALIDATE

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            own = {"cache-control", *(name.lower() for name, _ in SECURITY_HEADERS)}
            headers = [(k, v) for k, v in headers if k.lower() not in own]
            ok = status.startswith(("200", "206", "304"))
            headers.append(("Cache-Control", cache_control if ok else "no-store"))
            headers.extend(SECURITY_HEADERS)
            return start_response(status, headers, exc_info)

        return WhiteNoise.serve(static_file, environ, start)


def wrap(app: Flask, cache_dir: str) -> None:
    """Serve ``app``'s static folder through :class:`StaticFiles` (see the module doc)."""
    autorefresh = bool(app.debug or app.config.get("TEMPLATES_AUTO_RELOAD"))
    app.wsgi_app = StaticFiles(  # type: ignore[method-assign]
        app.wsgi_app, str(app.static_folder), cache_dir, autorefresh=autorefresh
    )
