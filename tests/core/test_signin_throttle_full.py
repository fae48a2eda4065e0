"""A full sign-in throttle never forgets a key near its limit: flooding it with junk names
cannot reset a victim's count (only clean keys, one attempt at most, make room), and when no
key is clean a new key's attempt is refused rather than let through. A fake clock."""

from __future__ import annotations

from core.identity.throttle import MAX_TRACKED, SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_junk_names_cannot_evict_a_victims_failures() -> None:
    t = SignInThrottle(max_failures=5, window_s=300, clock=Clock())
    for _ in range(4):
        assert t.attempt("ann", None) == 0
    for i in range(MAX_TRACKED + 100):  # one guess per junk name: the table fills and turns
        t.attempt(f"junk-{i}", None)
    assert t.attempt("ann", None) == 0  # the fifth guess...
    assert t.attempt("ann", None) > 0  # ...and no sixth


def test_with_no_clean_key_a_new_key_waits_instead_of_evicting() -> None:
    t = SignInThrottle(max_failures=5, window_s=300, clock=Clock())
    for _ in range(5):
        t.attempt("ann", None)
    for i in range(MAX_TRACKED - 1):
        t.failed(f"junk-{i}", None)
        t.failed(f"junk-{i}", None)  # two attempts each: not clean
    assert t.attempt("newcomer", None) > 0
    assert t.attempt("ann", None) > 0  # still blocked: never evicted


def test_a_success_takes_its_attempt_back_from_the_address() -> None:
    t = SignInThrottle(max_failures=2, window_s=300, clock=Clock())
    assert t.attempt("bob", "10.0.0.1") == 0  # wrong
    assert t.attempt("ann", "10.0.0.1") == 0
    t.succeeded("ann", "10.0.0.1")  # right: not a failure of the address
    assert t.attempt("carl", "10.0.0.1") == 0
    assert t.attempt("dan", "10.0.0.1") > 0  # bob's and carl's failures
