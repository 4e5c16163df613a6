"""The REST log: one row per HTTP attempt to Bitrix24, kept `REST_LOG_DAYS` (Market rule).

Bitrix24 Market asks server-side apps to keep logs of REST requests and responses "for at
least the last 3 days" and to hand support the parameters of specific requests
(`market/preparing-to-publish/common-requirements.md`). Each row keeps the metadata plain
(time, portal, service, method, HTTP status, error code, duration) so it can be queried and
pruned, and the request parameters and response body redacted, capped at `BODY_CAP`
characters each and encrypted with the token key ring: the bodies carry CRM personal data.

Redaction is structural first (every mapping key that names a secret, at any depth: the
`auth` token, access/refresh tokens, `client_secret`, `code`, `application_token`), then
`core.redact.redact` over the text as a second net.

``RestLog(engine, keyring)``
    ``insert(entries)``            one batched write of `Entry` rows
    ``prune(days, limit)``         delete up to `limit` rows older than `days`; returns count
    ``delete_portal(member_id)``   a CLEAN uninstall's deletion
    ``rows(member_id, since, method=None, full=False)``  newest last, bodies decrypted if full
    ``summary(member_id, since)``  {method: (calls, errors)} over a period
    ``known(member_id)``           does the log hold any row of this portal
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadcard.core.redact import REDACTED, redact
from leadcard.storage.db import guarded, metadata, reading, write_transaction
from leadcard.storage.keyring import KeyRing

BODY_CAP = 16 * 1024
TRUNCATED = "…[truncated]"
# Keys whose values never reach the log; `code` is the OAuth authorization code here, the
# log's own metadata keeps Bitrix24's error code.
SECRET_KEYS = frozenset({
    "auth", "auth_id", "refresh_id", "access_token", "refresh_token", "client_secret",
    "application_token", "code", "password", "app_sid", "secret_key", "token_keys",
})

rest_log = sa.Table(
    "rest_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("called_at", sa.Float, nullable=False),
    sa.Column("member_id", sa.String(64), nullable=True),
    sa.Column("service", sa.String(8), nullable=False),
    sa.Column("method", sa.String(128), nullable=False),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("error_code", sa.String(64), nullable=False, server_default=""),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Index("ix_rest_log_called_at", "called_at"),
    sa.Index("ix_rest_log_member_called", "member_id", "called_at"),
)


@dataclass(frozen=True)
class Entry:
    """One logged attempt, as the writer hands it over (params/response still raw)."""

    called_at: float
    member_id: str | None
    service: str
    method: str
    http_status: int | None
    error_code: str
    duration_ms: int
    params: Mapping[str, Any]
    response: bytes


def scrub(value: Any) -> Any:
    """A copy of `value` with every secret-named key's value replaced, at any depth."""
    if isinstance(value, Mapping):
        return {k: REDACTED if str(k).lower().split("[")[0] in SECRET_KEYS else scrub(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def _cap(text: str) -> str:
    if len(text) <= BODY_CAP:
        return text
    return text[:BODY_CAP - len(TRUNCATED)] + TRUNCATED


def request_text(params: Mapping[str, Any]) -> str:
    """Redacted, capped JSON of the request parameters."""
    return _cap(redact(json.dumps(scrub(params), ensure_ascii=False, default=str)))


def response_text(body: bytes) -> str:
    """Redacted, capped answer: parsed and scrubbed when JSON, else the text as sent."""
    text = body.decode("utf-8", "replace")
    try:
        text = json.dumps(scrub(json.loads(text)), ensure_ascii=False)
    except ValueError:
        pass
    return _cap(redact(text))


class RestLog:
    """The rest_log table; nothing else reads or writes it."""

    def __init__(self, engine: Engine, keyring: KeyRing) -> None:
        self._engine = engine
        self._keyring = keyring

    def insert(self, entries: Iterable[Entry]) -> int:
        """Write a batch in one transaction (redacting and encrypting each body)."""
        rows = [{
            "called_at": e.called_at, "member_id": e.member_id, "service": e.service[:8],
            "method": e.method[:128], "http_status": e.http_status,
            "error_code": e.error_code[:64], "duration_ms": e.duration_ms,
            "request": self._keyring.encrypt(request_text(e.params)),
            "response": self._keyring.encrypt(response_text(e.response)),
        } for e in entries]
        if rows:
            with guarded(write_transaction(self._engine, waits_for_locks=False)) as conn:
                conn.execute(sa.insert(rest_log), rows)
        return len(rows)

    def prune(self, days: float, limit: int = 5000, *, now: float | None = None) -> int:
        """Delete up to `limit` of the oldest rows older than `days`; how many went."""
        t = rest_log
        cutoff = (time.time() if now is None else now) - days * 86400
        old = sa.select(t.c.id).where(t.c.called_at < cutoff).order_by(t.c.called_at).limit(limit)
        with guarded(write_transaction(self._engine, waits_for_locks=False)) as conn:
            ids = [r[0] for r in conn.execute(old)]
            if ids:
                conn.execute(sa.delete(t).where(t.c.id.in_(ids)))
        return len(ids)

    def delete_portal(self, member_id: str) -> int:
        """Forget every row of a portal (uninstall with CLEAN=1)."""
        with guarded(write_transaction(self._engine, waits_for_locks=False)) as conn:
            return conn.execute(sa.delete(rest_log).where(rest_log.c.member_id == member_id)).rowcount

    def known(self, member_id: str) -> bool:
        with reading(self._engine) as conn:
            return conn.execute(sa.select(rest_log.c.id)
                                .where(rest_log.c.member_id == member_id).limit(1)).first() is not None

    def rows(self, member_id: str, since: float, method: str | None = None,
             full: bool = False) -> list[dict[str, Any]]:
        """A portal's calls since `since` (epoch seconds), oldest first."""
        t = rest_log
        q = sa.select(t).where(t.c.member_id == member_id, t.c.called_at >= since)
        if method:
            q = q.where(t.c.method == method)
        with reading(self._engine) as conn:
            found = [dict(r._mapping) for r in conn.execute(q.order_by(t.c.called_at, t.c.id))]
        for row in found:
            if full:
                row["request"] = self._keyring.decrypt(row["request"])
                row["response"] = self._keyring.decrypt(row["response"])
            else:
                row.pop("request"), row.pop("response")
        return found

    def summary(self, member_id: str, since: float) -> dict[str, tuple[int, int]]:
        """{method: (calls, errors)} since `since`; an error is a non-empty error code."""
        t = rest_log
        errors = sa.func.sum(sa.case((t.c.error_code != "", 1), else_=0))
        q = (sa.select(t.c.method, sa.func.count(), errors)
             .where(t.c.member_id == member_id, t.c.called_at >= since).group_by(t.c.method))
        with reading(self._engine) as conn:
            return {m: (int(n), int(e or 0)) for m, n, e in conn.execute(q)}
