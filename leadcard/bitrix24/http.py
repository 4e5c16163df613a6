"""Outbound HTTP: pooled keep-alive connections, explicit timeouts, no redirects.

Two clients, one job each:
- `portal_pool()`: the REST hot path to portals — one thread-safe urllib3 `PoolManager` per
  process, a keep-alive pool per portal host. urllib3 directly, not requests: a view makes one
  upstream request, and requests' per-call machinery (request preparation, hooks, cookie jar,
  environment merging) cost more CPU than the rest of the call on a slow core (bench/run.py).
- `SessionPool`: one `requests.Session` per thread for the OAuth server, because Authlib's
  client is a requests session (requests' pool cache is not safe to share across threads when
  many hosts are in play — psf/requests#1871).

Redirects are never followed: a Bitrix24 portal that moved answers 302, and a client that
follows it would resend the user's token to whatever `Location` says (security.md R17;
settings/how-to-call-rest-api/change-domen.md). Neither client reads proxy settings from the
environment: the egress path is explicit.
"""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

import certifi
import requests
import urllib3
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


def portal_pool(threads_per_host: int = 8) -> urllib3.PoolManager:
    """The process-wide keep-alive pools for portal REST calls (thread-safe).

    `num_pools` bounds how many portal hosts keep idle sockets (least recently used are
    closed); `maxsize` is how many idle sockets one host keeps — a burst of more threads
    opens extra connections rather than waiting (`block=False`). Certificates are checked
    against certifi's bundle, as requests does.
    """
    return urllib3.PoolManager(
        num_pools=256,
        maxsize=threads_per_host,
        block=False,
        retries=False,
        headers={"User-Agent": USER_AGENT},
        cert_reqs="CERT_REQUIRED",
        ca_certs=certifi.where(),
    )
