"""The sign-in back-off counts failures per user name and per client address, refuses for the
rest of the window once either reaches the bound, forgets old failures, and is bounded in
memory. A fake clock: no test waits."""

from __future__ import annotations

from core.identity.throttle import MAX_TRACKED, SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_for_a_name_block_it_from_anywhere_for_the_window() -> None:
    clock = Clock()
    t = SignInThrottle(max_failures=5, window_s=300, clock=clock)
    for i in range(5):
        assert t.retry_after("Ann", f"10.0.0.{i}") == 0
        t.failed("Ann", f"10.0.0.{i}")
        clock.now += 10
    assert t.retry_after("ann", "10.9.9.9") == 300 - 50  # the name, whatever the address
    assert t.retry_after("bob", "10.9.9.9") == 0  # another name from another address
    clock.now += 250
    assert t.retry_after("ann", "10.9.9.9") == 0  # the oldest failure left the window


def test_five_failures_from_an_address_block_every_name_from_it() -> None:
    clock = Clock()
    t = SignInThrottle(max_failures=5, window_s=300, clock=clock)
    for name in ("a", "b", "c", "d", "e"):  # unknown names count as known ones
        t.failed(name, "10.0.0.1")
    assert t.retry_after("f", "10.0.0.1") == 300
    assert t.retry_after("f", "10.0.0.2") == 0


def test_a_success_clears_the_names_failures_only() -> None:
    t = SignInThrottle(max_failures=2, window_s=300, clock=Clock())
    t.failed("ann", "10.0.0.1")
    t.succeeded("ann")
    t.failed("ann", "10.0.0.2")
    assert t.retry_after("ann", "10.0.0.3") == 0
    t.failed("bob", "10.0.0.1")
    assert t.retry_after("carl", "10.0.0.1") > 0  # the address kept its two failures


def test_memory_is_bounded_whatever_names_callers_send() -> None:
    t = SignInThrottle(clock=Clock())
    for i in range(MAX_TRACKED + 50):
        t.failed(f"user-{i}", None)
    assert len(t._failures) <= MAX_TRACKED
