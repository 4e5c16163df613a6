"""Logging set-up: one line per record with the request id, secrets redacted.

The redaction filter sits on the handlers (filters on a logger don't see records that
propagate from child loggers), so every record — ours, Flask's, gunicorn's — passes it.
"""

from __future__ import annotations

import logging
import sys

from flask import g, has_request_context

from leadcard.core import redact


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(g, "request_id", "-") if has_request_context() else "-"
        return True


def configure(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_leadcard", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
        ))
        handler.addFilter(_RequestId())
        handler._leadcard = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    redact.install(["gunicorn.error", "gunicorn.access", "werkzeug"])
