"""Limits on requests that cost Lead Card work before anyone is authenticated.

Two requests can be sent by anybody and each makes the app do something real:
- `GET /reconnect?member_id=…` stores a one-time `state` row (anonymous);
- `POST /events` ONAPPUNINSTALL with a matching `application_token` makes the app ask the
  OAuth server whether the app is really gone (`app.info`). Every portal user can read that
  token from the frame POST, so it authenticates nothing on its own.

Each kind has two leaky buckets (GCRA, `ratelimit.py`): one per portal, which bounds what an
insider of one portal can make us do, and one per client address, which bounds an attacker
who knows many portals. They live in the database bucket, shared by every worker and host;
the keys hold a keyed hash of the address, never the address itself. When a bucket is empty
the request is refused with 429 and `Retry-After`, before anything is stored or sent.

Trade-off, on purpose: while someone floods a portal's uninstall budget, a genuine
ONAPPUNINSTALL for that portal in the same minutes is refused too (Bitrix24 does not redeliver
events). The portal then keeps a stale row — exactly as for an uninstall the OAuth server
cannot confirm — until `flask portals check` finds the grant refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from leadcard.core import errors
from leadcard.core.ratelimit import Bucket, RateLimited


@dataclass(frozen=True)
class Allowance:
    """``burst`` requests at once, then one every ``every`` seconds."""

    burst: int
    every: float


@dataclass(frozen=True)
class Rule:
    """The allowances of one kind of request, per portal and per client address."""

    per_portal: Allowance
    per_client: Allowance


RULES: dict[str, Rule] = {
    # An administrator reconnects a few times at most; 300 anonymous reconnects in 2 s made
    # 300 rows. Per portal: 10 at once, then one a minute (with the 600 s state lifetime, at
    # most ~20 live states per portal).
    "reconnect": Rule(per_portal=Allowance(burst=10, every=60.0),
                      per_client=Allowance(burst=5, every=30.0)),
    # A real uninstall arrives once per portal; a flood of 50 forged ones made 50 OAuth calls.
    # Bitrix24 sends every portal's events from a few servers, so the per-client allowance is
    # generous: it only stops one sender from sweeping many portals.
    "uninstall": Rule(per_portal=Allowance(burst=3, every=20.0),
                      per_client=Allowance(burst=30, every=1.0)),
}


class AttemptLimits:
    """`check(kind, member_id, client)`: take one slot of each of that kind's buckets, or
    raise `errors.TooManyAttempts` (with `retry_after`); a refused attempt still counts
    against the client, so a client that keeps trying stays refused."""

    def __init__(self, make_bucket: Callable[[float, int], Bucket], secret: str,
                 rules: dict[str, Rule] | None = None) -> None:
        """``make_bucket(rate, burst)`` builds one shared bucket; ``secret`` keys the hash of
        client addresses."""
        self._rules = rules or RULES
        self._buckets = {
            (kind, scope): make_bucket(1.0 / allowance.every, allowance.burst)
            for kind, rule in self._rules.items()
            for scope, allowance in (("portal", rule.per_portal), ("client", rule.per_client))
        }
        self._hash_key = hashlib.sha256(b"leadcard-attempts:" + secret.encode()).digest()

    def check(self, kind: str, member_id: str, client: str) -> None:
        """One attempt of ``kind`` for portal ``member_id`` from address ``client``."""
        client_key = hmac.new(self._hash_key, client.encode(), hashlib.sha256).hexdigest()[:32]
        # The client first: a sweep over many portals must not drain each portal's bucket.
        for scope, key in (("client", client_key), ("portal", member_id)):
            try:
                self._buckets[(kind, scope)].acquire(f"attempt:{kind}:{scope}:{key}", max_wait=0)
            except RateLimited as exc:
                raise errors.TooManyAttempts(
                    f"too many {kind} attempts per {scope}", retry_after=max(1.0, exc.retry_after)
                ) from None
