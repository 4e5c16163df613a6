"""Logging set-up: one line per record with the request id, secrets redacted.

Two formats (`LOG_FORMAT`): `text` (default), a readable line; `json`, one JSON object per
line for log pipelines, with the request id and — on the one summary line each request
writes (`web/request_log.py`) — `member_id`, route, method, status and duration. Never a
token: records pass the redaction filter before they are formatted.

The redaction filter sits on the handlers (filters on a logger don't see records that
propagate from child loggers), so every record — ours, Flask's, gunicorn's — passes it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from flask import g, has_request_context

from leadcard.core import redact

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# Fields a record may carry as `extra=` that the JSON line includes (request summaries).
JSON_FIELDS = ("member_id", "route", "method", "status", "duration_ms")


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(g, "request_id", "-") if has_request_context() else "-"
        return True


class _PoolDropsInOneLine(logging.Filter):
    """SQLAlchemy's pool logs a connection the database dropped (a restart, a failover) with
    the driver's whole traceback, once per pooled connection. The app answers those views with
    the designed 503 and says so itself; here the pool's record keeps one line naming the
    error, so an operator's log shows no traceback for a designed failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("sqlalchemy.pool") and record.exc_info and record.exc_info[1]:
            exc = record.exc_info[1]
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {first}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, request_id, message,
    the request-summary fields when present, and the exception's text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        for name in JSON_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Install (once) the handler on the root logger; set its format and the level."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_leadcard", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(_RequestId())
        handler.addFilter(_PoolDropsInOneLine())
        handler._leadcard = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.setLevel(level)
    redact.install(["gunicorn.error", "gunicorn.access", "werkzeug"])


def handler() -> logging.Handler | None:
    """The handler `configure` installed (tests format records with it)."""
    return next((h for h in logging.getLogger().handlers if getattr(h, "_leadcard", False)), None)
