"""AttemptLimits (issue 10 defect 11): per-portal and per-client allowances, with fake clocks."""

from __future__ import annotations

import pytest

from leadcard.core import errors
from leadcard.core.ratelimit import MemoryBucket
from leadcard.flows.attempts import RULES, Allowance, AttemptLimits, Rule


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limits(clock: Clock, rules: dict[str, Rule] | None = None) -> AttemptLimits:
    return AttemptLimits(lambda rate, burst: MemoryBucket(rate, burst, clock=clock),
                         "unit-secret", rules)


RULE = {"x": Rule(per_portal=Allowance(burst=3, every=10.0),
                  per_client=Allowance(burst=2, every=5.0))}


def test_one_client_gets_its_burst_then_waits():
    clock = Clock()
    guard = limits(clock, RULE)
    guard.check("x", "portal-1", "10.0.0.1")
    guard.check("x", "portal-1", "10.0.0.1")
    with pytest.raises(errors.TooManyAttempts) as refused:
        guard.check("x", "portal-1", "10.0.0.1")
    assert refused.value.status == 429 and refused.value.retry_after >= 1
    clock.now += 5.0  # one client slot drains back
    guard.check("x", "portal-1", "10.0.0.1")


def test_many_clients_still_meet_the_portals_allowance():
    clock = Clock()
    guard = limits(clock, RULE)
    for n in range(3):
        guard.check("x", "portal-1", f"10.0.0.{n}")
    with pytest.raises(errors.TooManyAttempts, match="per portal"):
        guard.check("x", "portal-1", "10.0.0.99")
    guard.check("x", "portal-2", "10.0.0.99")  # another portal is not affected
    clock.now += 10.0
    guard.check("x", "portal-1", "10.0.0.99")


def test_kinds_are_counted_apart():
    clock = Clock()
    guard = limits(clock)
    for _ in range(RULES["reconnect"].per_client.burst):
        guard.check("reconnect", "p", "c")
    with pytest.raises(errors.TooManyAttempts):
        guard.check("reconnect", "p", "c")
    guard.check("uninstall", "p", "c")


def test_bucket_keys_never_hold_the_client_address():
    seen: list[str] = []

    class Recording(MemoryBucket):
        def acquire(self, key: str, max_wait: float) -> float:
            seen.append(key)
            return super().acquire(key, max_wait)

    guard = AttemptLimits(lambda rate, burst: Recording(rate, burst), "s")
    guard.check("reconnect", "member-1", "203.0.113.7")
    assert seen and not any("203.0.113.7" in key for key in seen)
    assert any(key.endswith(":portal:member-1") for key in seen)
