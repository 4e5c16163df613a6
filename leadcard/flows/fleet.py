"""The fan-out behind `portals check` and `portals renew`: one job per stored portal, at most
`concurrency` at a time, streamed from the store.

Owns the bounded pool of worker threads, the outcome of each portal (`Outcome`), the tally
(`Summary`) and a clean stop on Ctrl-C: no new portal is started, the ones in flight finish
within their own deadline, and every thread is joined before `run` returns. Per-portal
Bitrix24 limits are not this module's business: every call goes through the portal's
session and its shared bucket (bitrix24/rest.py), so eight threads on one portal still
wait for its slots.

The portals come as an iterator (`PortalStore.iter_all`, 500 rows a read) and at most
`concurrency` are in flight: 10,000 grants are never decrypted at once — each job decrypts
its own when it opens its session.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from leadcard.bitrix24.rest import Deadline
from leadcard.core import errors
from leadcard.storage.portals import UNINSTALLED, Portal, PortalStore, iter_expiring

MAX_CONCURRENCY = 64
CHECK_CONCURRENCY = 16
# Renewals hit the one OAuth server every portal shares (settings/oauth/auto-renewal.md
# warns that apps hammering it may be blocked): gentler by default.
RENEW_CONCURRENCY = 4
CALL_SECONDS = 20.0
# What a failing check writes on the portal row: the grant itself is gone or unpaid.
MARKED_CODES = ("token_revoked", "app_not_installed", "payment_required")

OK, FAILED = "ok", "failed"

if TYPE_CHECKING:
    from leadcard.flows.services import Services


@dataclass(frozen=True)
class Outcome:
    """What happened to one portal: `ok` or `failed` with the error code (never a token)."""

    member_id: str
    domain: str
    outcome: str
    code: str = ""


@dataclass
class Summary:
    """The tally of a run: counts by outcome and by error code, the failures, and whether
    Ctrl-C cut it short (then `total` is what was done, not what was stored)."""

    total: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    failures: list[Outcome] = field(default_factory=list)
    interrupted: bool = False

    def add(self, result: Outcome) -> None:
        self.total += 1
        self.outcomes[result.outcome] += 1
        if result.outcome != OK:
            self.codes[result.code] += 1
            self.failures.append(result)

    @property
    def failed(self) -> int:
        return self.total - self.outcomes[OK]

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total, "interrupted": self.interrupted,
            "outcomes": dict(self.outcomes), "error_codes": dict(self.codes),
            "failures": [{"member_id": f.member_id, "domain": f.domain, "code": f.code}
                         for f in self.failures],
        }


def clamp(concurrency: int, pool: int | None) -> int:
    """Threads actually used: 1..MAX_CONCURRENCY, and no more than the database pool hands
    out (a job holds a connection for its reads and bucket writes; more threads than
    connections would wait on the pool and fail its checkout timeout as "db unavailable")."""
    n = max(1, min(concurrency, MAX_CONCURRENCY))
    return min(n, pool) if pool else n


def run(
    portals: Iterable[Portal],
    job: Callable[[Portal], Outcome],
    *,
    concurrency: int,
    on_done: Callable[[Outcome], None] = lambda _r: None,
    stop: threading.Event | None = None,
) -> Summary:
    """Run `job` on every portal, at most `concurrency` at once; `on_done` is called in the
    calling thread for each result (progress bar, plain lines). A KeyboardInterrupt (or
    `stop` set) starts no new job, lets those in flight finish, joins the threads and
    returns the partial summary with `interrupted` set."""
    stop = stop or threading.Event()
    summary = Summary()
    source: Iterator[Portal] = iter(portals)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fleet")
    running: set[Future[Outcome]] = set()

    def collect(done: Iterable[Future[Outcome]]) -> None:
        for fut in done:
            running.discard(fut)
            result = fut.result()
            summary.add(result)
            on_done(result)

    try:
        for portal in source:
            if stop.is_set():
                break
            running.add(pool.submit(_guarded, job, portal))
            if len(running) >= concurrency:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                collect(done)
        while running and not stop.is_set():
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            collect(done)
    except KeyboardInterrupt:
        stop.set()
    finally:
        summary.interrupted = stop.is_set()
        # In-flight jobs end within their deadline; they are counted, nothing new starts.
        pool.shutdown(wait=True, cancel_futures=True)
        collect([f for f in running if f.done() and not f.cancelled()])
    return summary


def _guarded(job: Callable[[Portal], Outcome], portal: Portal) -> Outcome:
    """A job never ends the run: any of our errors is that portal's failure."""
    try:
        return job(portal)
    except errors.LeadCardError as exc:
        return Outcome(portal.member_id, portal.domain, FAILED, exc.code)


# --- the two jobs -------------------------------------------------------------------------

def check_portals(store: PortalStore, batch: int = 500) -> Iterator[Portal]:
    """The portals `check` visits: every stored one but the uninstalled."""
    return (p for p in store.iter_all(batch=batch) if p.status != UNINSTALLED)


def renew_portals(store: PortalStore, older_than_days: float, batch: int = 500) -> Iterator[Portal]:
    return iter_expiring(store, older_than_days, batch=batch)


def check_job(services: Services) -> Callable[[Portal], Outcome]:
    """app.info with the stored grant (renewed when expired); a revoked or unpaid grant is
    written on the row so the operator and the home page see it."""
    def job(p: Portal) -> Outcome:
        try:
            services.portal_api.call(p.member_id, "app.info", {},
                                     deadline=Deadline.after(CALL_SECONDS))
        except errors.LeadCardError as exc:
            if exc.code in MARKED_CODES:
                current = services.store.get(p.member_id)
                services.store.mark(p.member_id, current.status if current else p.status,
                                    exc.code)
            return Outcome(p.member_id, p.domain, FAILED, exc.code)
        return Outcome(p.member_id, p.domain, OK)
    return job


def renew_job(services: Services) -> Callable[[Portal], Outcome]:
    """Spend and replace the stored refresh token (single-flight in the store)."""
    def job(p: Portal) -> Outcome:
        services.portal_api.renew(p.member_id, p.token_version)
        return Outcome(p.member_id, p.domain, OK)
    return job
