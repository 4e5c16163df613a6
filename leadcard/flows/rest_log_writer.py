"""The REST log's writer: an observer that costs a view one queue put, and the thread behind it.

Every `observe.UpstreamCall` becomes a `rest_log.Entry` pushed onto a bounded queue; a daemon
thread, started lazily on the first call (so after gunicorn forks its workers), writes them in
batches every `FLUSH_SECONDS` or `BATCH` rows, redacting and encrypting on its own thread.
A full queue drops the record and counts it (`dropped`): a view never waits for the log. A
database failure drops the batch and is logged once until a write succeeds again: the view
never sees it. The same thread prunes rows older than `days`, one bounded slice at most
every `PRUNE_EVERY` seconds. At exit (atexit) what is queued is flushed.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time

from leadcard.bitrix24.observe import UpstreamCall
from leadcard.core import errors
from leadcard.storage.rest_log import Entry, RestLog

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
BATCH = 200
FLUSH_SECONDS = 0.5
PRUNE_EVERY = 300.0
PRUNE_LIMIT = 5000


class RestLogWriter:
    """Owns the queue and the writer thread of one process; call it as an observer."""

    def __init__(self, store: RestLog, days: float, *, queue_size: int = QUEUE_SIZE) -> None:
        self.store = store
        self.days = days
        self.dropped = 0
        self.failed_batches = 0
        self._queue: queue.Queue[Entry] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._failing = False
        self._last_prune = 0.0

    def __call__(self, call: UpstreamCall) -> None:
        """The observer: enqueue or drop, never block, never raise."""
        entry = Entry(called_at=call.started_at, member_id=call.member_id, service=call.service,
                      method=call.method, http_status=call.http_status,
                      error_code=call.error_code, duration_ms=round(call.duration * 1000),
                      params=dict(call.params), response=call.response)
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += 1
            return
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        # A thread does not survive fork: a worker forked after the first call starts its own.
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="rest-log", daemon=True)
                self._thread.start()
                atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def flush(self) -> int:
        """Write everything queued now (in batches); prune when due. Never raises."""
        written = 0
        while True:
            batch: list[Entry] = []
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not batch:
                break
            written += self._write(batch)
        self._prune_if_due()
        return written

    def _write(self, batch: list[Entry]) -> int:
        try:
            n = self.store.insert(batch)
        except Exception as exc:  # the log must never take a view (or the thread) down
            self.failed_batches += 1
            if not self._failing:
                _log_failure(exc, "REST log: writing %d rows failed; dropping them", len(batch))
            self._failing = True
            return 0
        self._failing = False
        return n

    def _prune_if_due(self) -> None:
        now = time.monotonic()
        if self._last_prune and now - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now
        try:
            self.store.prune(self.days, PRUNE_LIMIT)
        except Exception as exc:
            _log_failure(exc, "REST log: pruning failed; will retry")


def _log_failure(exc: Exception, message: str, *args: object) -> None:
    """A lost database is a designed failure: one line naming it. Anything else is a bug in
    this module: logged with its traceback."""
    if isinstance(exc, errors.LeadCardError):
        log.error(message + " (%s)", *args, type(exc).__name__)
    else:
        log.exception(message, *args)
