"""Outbound HTTP: the one seam between Lead Card and the network.

Everything the app sends to Bitrix24 — portal REST (`rest.py`) and the OAuth server's token
endpoint and `app.info` (`oauth.py`) — is one `Transport.post`. The real transport is
`Urllib3Transport`; tests hand the clients a fake that answers from memory
(`tests/unit/fakes.py`), so every flow runs without sockets.

The contract is deliberately small: POST bytes with headers and explicit connect/read
timeouts, get back status, headers and body bytes, or one of three typed failures:

- `ConnectFailed` — no answer could have been produced: refused, unresolvable, connect
  timeout, or the connection dropped before a response. Safe to retry a read once.
- `ReadTimedOut` — the request went out and no answer came in time. Bitrix24 may be
  executing it still: never retried.
- `TransportFailed` — anything else the HTTP layer refused (TLS, a malformed answer).

Rules every transport keeps (threats.md R17; settings/how-to-call-rest-api/change-domen.md):
- redirects are never followed: a portal that moved answers 302, and a client that follows
  it would resend the user's token to whatever `Location` says; the 3xx is returned;
- no proxy or netrc settings are read from the environment: the egress path is explicit;
- certificates are checked (certifi's bundle, as requests does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import certifi
import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, ProtocolError, ReadTimeoutError

USER_AGENT = "LeadCard/1.0 (+bitrix24 marketplace app)"


class TransportError(Exception):
    """The request produced no HTTP answer (see the three subclasses)."""


class ConnectFailed(TransportError):
    """No connection, or it dropped before an answer: a read may be retried once."""

    # True when the connection dropped after the request may have gone out (ProtocolError):
    # a write may have been executed.
    maybe_sent = False


class ReadTimedOut(TransportError):
    """The request was sent but no answer arrived within the read timeout."""


class TransportFailed(TransportError):
    """Any other failure of the HTTP layer (TLS, malformed answer)."""


@dataclass(frozen=True)
class Reply:
    """One HTTP answer. `headers` lookups use lower-case names (the real transport's
    header map is case-insensitive; fakes store lower-case keys)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """POST `body` to `url` once: no redirects followed, no retries, explicit timeouts."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
             connect_timeout: float, read_timeout: float) -> Reply: ...


class Urllib3Transport:
    """The real transport: one thread-safe urllib3 `PoolManager` per process, a keep-alive
    pool per host (portals and the OAuth server alike).

    urllib3 directly, not requests: a view makes one upstream request, and requests'
    per-call machinery (request preparation, hooks, cookie jar, environment merging) cost
    more CPU than the rest of the call on a slow core (bench/run.py). `num_pools` bounds how
    many hosts keep idle sockets (least recently used are closed); `maxsize` is how many idle
    sockets one host keeps — a burst of more threads opens extra connections rather than
    waiting (`block=False`). urllib3 never reads proxy variables by itself.
    """

    def __init__(self, threads_per_host: int = 8) -> None:
        self._pool = urllib3.PoolManager(
            num_pools=256,
            maxsize=threads_per_host,
            block=False,
            retries=False,
            headers={"User-Agent": USER_AGENT},
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
             connect_timeout: float, read_timeout: float) -> Reply:
        try:
            response = self._pool.request(
                "POST",
                url,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
                redirect=False,
                retries=False,
            )
        except ReadTimeoutError:
            raise ReadTimedOut() from None
        except ConnectTimeoutError:
            # Refused/unresolvable hosts (NewConnectionError) and connect timeouts: not sent.
            raise ConnectFailed() from None
        except ProtocolError:
            # A connection dropped before an answer: the request may have gone out.
            failed = ConnectFailed()
            failed.maybe_sent = True
            raise failed from None
        except HTTPError as exc:
            raise TransportFailed(type(exc).__name__) from None
        return Reply(status=response.status, headers=response.headers, body=response.data)
