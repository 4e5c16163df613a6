"""RenderedCards: a page is reused only for exactly the same inputs."""

from __future__ import annotations

import threading

import pytest

from leadcard.card.rendered import RenderedCards, digest


class Renders:
    """A render function that counts its calls and returns a page naming its inputs."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, inputs):
        def render() -> str:
            self.calls += 1
            return f"<p>{inputs!r}</p>"
        return render


LEAD = {"ID": "101", "TITLE": "Fleet", "PHONE": [{"VALUE": "+1 555", "VALUE_TYPE": "WORK"}]}


def test_same_inputs_render_once():
    store, renders = RenderedCards(8), Renders()
    inputs = (LEAD, {"fields": 1}, "en", "en_US", "https://a.example")
    first = store.page(inputs, renders(inputs))
    again = store.page(([*inputs][0], {"fields": 1}, "en", "en_US", "https://a.example"),
                       renders(inputs))
    assert first == again and renders.calls == 1
    assert (store.hits, store.misses) == (1, 1)


@pytest.mark.parametrize("change", [
    lambda lead: lead.update(TITLE="Fleet!"),
    lambda lead: lead["PHONE"][0].update(VALUE_TYPE="MOBILE"),  # nested
    lambda lead: lead.update(EXTRA=None),
])
def test_any_change_in_the_lead_renders_again(change):
    store, renders = RenderedCards(8), Renders()
    lead = {"ID": "101", "TITLE": "Fleet", "PHONE": [{"VALUE": "+1 555", "VALUE_TYPE": "WORK"}]}
    store.page((lead, "en"), renders(1))
    change(lead)
    store.page((lead, "en"), renders(2))
    assert renders.calls == 2


@pytest.mark.parametrize("other", [
    (LEAD, "de", "de_DE", "https://a.example"),
    (LEAD, "en", "en_GB", "https://a.example"),
    (LEAD, "en", "en_US", "https://b.example"),
    (LEAD, "en", "en_US", None),
])
def test_language_locale_and_origin_are_part_of_the_key(other):
    assert digest((LEAD, "en", "en_US", "https://a.example")) != digest(other)


def test_least_recently_used_page_goes_first():
    store, renders = RenderedCards(2), Renders()
    store.page("a", renders("a"))
    store.page("b", renders("b"))
    store.page("a", renders("a"))  # a is now the most recent
    store.page("c", renders("c"))  # evicts b
    assert len(store) == 2 and renders.calls == 3
    store.page("a", renders("a"))
    assert renders.calls == 3
    store.page("b", renders("b"))
    assert renders.calls == 4


def test_zero_entries_disables_reuse():
    store, renders = RenderedCards(0), Renders()
    store.page("a", renders("a"))
    store.page("a", renders("a"))
    assert renders.calls == 2 and len(store) == 0


def test_inputs_that_are_not_json_shaped_are_rendered_every_time():
    store, renders = RenderedCards(8), Renders()
    huge = {"OPPORTUNITY": 10**30}  # json.loads gives such ints; they have no 64-bit form
    assert store.page(huge, renders(huge)) == store.page(huge, renders(huge))
    assert renders.calls == 2 and len(store) == 0


def test_negative_size_is_refused():
    with pytest.raises(ValueError):
        RenderedCards(-1)


def test_threads_share_the_store():
    store = RenderedCards(64)
    calls = []
    lock = threading.Lock()

    def render_for(i):
        def render():
            with lock:
                calls.append(i)
            return f"page {i}"
        return render

    def worker():
        for i in range(200):
            assert store.page(("lead", i % 10), render_for(i % 10)) == f"page {i % 10}"

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(calls)) == list(range(10))
    assert store.hits + store.misses == 8 * 200 and len(store) == 10


def test_key_order_does_not_matter():
    # Users come from a batch answer on one view and from the cache on the next.
    a = {"users": {"1": {"NAME": "Ada", "ID": "1"}, "2": {"NAME": "Ben", "ID": "2"}}}
    b = {"users": {"2": {"ID": "2", "NAME": "Ben"}, "1": {"ID": "1", "NAME": "Ada"}}}
    assert digest((a, "en")) == digest((b, "en"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pages_expire_after_ttl_and_leave_memory():
    clock = Clock()
    store, renders = RenderedCards(8, ttl=60, clock=clock), Renders()
    store.page("a", renders("a"))
    clock.now += 59
    store.page("a", renders("a"))
    assert renders.calls == 1
    clock.now += 2  # 61 s after it was rendered
    store.page("b", renders("b"))  # storing b sweeps the expired a
    assert len(store) == 1
    store.page("a", renders("a"))
    assert renders.calls == 3


def test_bad_ttl_is_refused():
    with pytest.raises(ValueError):
        RenderedCards(8, ttl=0)
