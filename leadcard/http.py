"""Outbound HTTP: pooled keep-alive sessions, explicit timeouts, no redirects.

One `requests.Session` per thread (requests' pool cache is not safe to share across
threads when many hosts are in play — psf/requests#1871), each with a connection pool per
portal host. Redirects are never followed: a Bitrix24 portal that moved answers 302, and a
client that follows it would resend the user's token to whatever `Location` says
(security.md R17; settings/how-to-call-rest-api/change-domen.md).
"""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

import requests
from requests.adapters import HTTPAdapter

USER_AGENT = "LeadCard/1.0 (+bitrix24 marketplace app)"

S = TypeVar("S", bound=requests.Session)


def _configure(session: S) -> S:
    # pool_connections = how many distinct hosts keep a pool; pool_maxsize = sockets per host.
    adapter = HTTPAdapter(pool_connections=64, pool_maxsize=8, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.max_redirects = 0
    session.trust_env = False  # no proxy/netrc surprises: the egress path is explicit
    return session


class SessionPool:
    """Hands each thread its own long-lived session built by `factory`."""

    def __init__(self, factory: Callable[[], S]) -> None:
        self._factory = factory
        self._local = threading.local()

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = _configure(self._factory())
            self._local.session = session
        return session


def plain_session_pool() -> SessionPool:
    return SessionPool(requests.Session)
