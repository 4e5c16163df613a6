"""Rendered lead cards, reused while everything they show is unchanged.

Building and rendering a card is most of the CPU a view spends in the app (bench/run.py,
docs/performance.md), and a lead is opened again and again with nothing changed: by the same
salesperson switching tabs, by colleagues, by Bitrix24 reloading the tab. So the finished HTML
is kept per process, keyed by a digest of a :class:`CardInputs` — every input
``templates/card.html`` reads, gathered in one value the view fills and the store keys on as a
whole, so an input added there is in the key without anyone remembering to add it
(tests/unit/test_card_inputs.py fails when the templates read something CardInputs does not
carry). Anything that changes gives another key, so a stale card is never served; the lead
itself is still read from Bitrix24 with the viewer's token on every view, so access rights are
checked every time.

Is it worth it? Measured in-process on the rich sample lead (101), best of 7 x 200 runs:
building and rendering its card costs ~1.2 ms of CPU (0.9 ms while the templates still
unpacked tuples), the digest ~0.07 ms. A warm view saves ~1.1 ms: ~0.6 % of a view at 200 ms
upstream latency, under the 1 % bar issue 11 sets for benchmark-driven tricks, but ~2 % at
the benchmark's 50 ms, where the warm-view ratio (1.08) would become the "lead edited" row's
1.11 and miss its <= 1.10 target (docs/performance.md). At 200 ms the benchmark agrees
(`bench.run --quick --latency 0.2`, default vs CARD_CACHE_ENTRIES=0): app CPU per view 3.6 vs
4.1 ms, warm p50 / bare RTT 1.035 vs 1.024 — no difference above the noise. Kept for the 50 ms
target; the key is derived, not hand-listed, so it cannot go stale.

Values that differ per response are not part of the stored HTML: the CSP nonce is rendered as
a per-process stand-in and replaced for each response (`security.render_reusable`).

Pages hold lead data, so they stay in worker memory only: never in Redis or on disk, at most
`max_entries` of them, each for at most `ttl` seconds (the reference-data TTL by default), and
only ever served after the viewer's own fresh read of the lead produced the same inputs.

Templates and message catalogs are loaded once per process, so with template auto-reload
(development) the store is switched off: an edited template must show at once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from leadcard.card.model import ReferenceData


@dataclass(frozen=True)
class CardInputs:
    """Everything the rendered card page depends on, and so its reuse key.

    The key is this whole value (``digest`` serialises every field, the reference data's
    too): a new input goes here, never into the template call beside it. Per-process
    constants (static file hashes, the frame library's URL, the config) and the per-response
    CSP nonce are not inputs; ``tests/unit/test_card_inputs.py`` lists what the templates read.
    """

    lead: dict  # the crm.lead.get result, read just now with the viewer's token
    reference: ReferenceData
    # Babel format locale: numbers and dates, and also the texts' catalog and <html lang>
    # (flask-babel chooses both by it), so the Bitrix24 LANG it came from adds nothing.
    locale: str
    frame_origin: str | None  # verified portal origin: which avatar URLs the CSP loads
    # The minute the card is measured from (overdue to-dos, "3 days ago", the time facts), as
    # ISO 8601 UTC: a reused page is at most a minute behind the clock.
    now: str = ""


def digest(inputs: Any) -> bytes:
    """A 128-bit digest of JSON-shaped inputs (dicts, lists, str, numbers, None, and
    dataclasses such as :class:`CardInputs`, field by field).

    Keys are sorted: the same data can arrive in another order (users gathered from a batch
    answer one view, from the cache the next). orjson: well under 0.1 ms for a rich lead's
    26 kB of inputs, where the standard library's encoder took ~630 us on the benchmark machine.
    """
    return hashlib.blake2b(orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS),
                           digest_size=16).digest()


class RenderedCards:
    """A thread-safe LRU of rendered pages keyed by `digest`, each kept at most ``ttl`` seconds;
    ``max_entries=0`` (``CARD_CACHE_ENTRIES=0``) disables it. Saves ~1.1 ms of CPU per warm
    view: ~0.6 % at 200 ms upstream latency, ~2 % at 50 ms (module docstring)."""

    def __init__(
        self, max_entries: int = 256, ttl: float = 600.0, *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        if not ttl > 0:
            raise ValueError("ttl must be > 0 seconds")
        self.max_entries = max_entries
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._pages: OrderedDict[bytes, tuple[float, str]] = OrderedDict()
        # Counted for tests and the benchmark.
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._pages)

    def page(self, inputs: Any, render: Callable[[], str]) -> str:
        """The stored page for ``inputs``, or ``render()``'s result, stored for next time.

        Two threads missing the same key both render (the result is the same); rendering
        happens outside the lock so one slow render never holds up other views.
        """
        if self.max_entries == 0:
            return render()
        try:
            key = digest(inputs)
        except TypeError:  # not JSON-shaped (an integer beyond 64 bits): just render
            return render()
        with self._lock:
            now = self._clock()
            entry = self._pages.get(key)
            if entry is not None and entry[0] > now:
                self._pages.move_to_end(key)
                self.hits += 1
                return entry[1]
            self.misses += 1
        html = render()
        with self._lock:
            now = self._clock()
            self._pages[key] = (now + self._ttl, html)
            self._pages.move_to_end(key)
            while len(self._pages) > self.max_entries:
                self._pages.popitem(last=False)
            # Expired pages go too (least recently used first, so stop at the first live one).
            while self._pages:
                oldest = next(iter(self._pages.values()))
                if oldest[0] > now:
                    break
                self._pages.popitem(last=False)
        return html
