"""The password gate is paced per client address and for the whole process, not per session.

The rule (services/throttle.py) runs on a stepped clock; the gate itself runs in AppTest, where ten fresh
sessions guessing one after another must meet exactly what one session guessing ten times meets.
"""

from __future__ import annotations

import logging
import threading

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from services.throttle import UNKNOWN, GateThrottle, client_key
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(120)

PASSWORD = "correct horse battery staple"
GUESSES = [f"guess number {i}" for i in range(10)]


class SteppedClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(throttle: GateThrottle, clock: SteppedClock, address: str | None = "203.0.113.7"):
    """One wrong answer taken at its turn; returns the turn."""
    turn = throttle.admit(address)
    if not turn.refused:
        clock.now += turn.wait
        throttle.record(turn, right=False)
    return turn


# --- the rule ------------------------------------------------------------------------------------------

def test_each_wrong_answer_doubles_the_wait_then_the_address_is_locked():
    clock = SteppedClock()
    throttle = GateThrottle(lock_after=6, clock=clock)
    waits = [fail(throttle, clock).wait for _ in range(6)]
    assert waits == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]
    locked = throttle.admit("203.0.113.7")
    assert locked.refused and locked.retry_after == pytest.approx(15 * 60)
    clock.now += 15 * 60 + 1  # the lock and the failures it counted expire together
    assert throttle.admit("203.0.113.7").wait == 0.0


def test_ten_attempts_at_the_same_moment_are_spaced_like_one_sessions():
    clock = SteppedClock()
    throttle = GateThrottle(lock_after=10, clock=clock)
    turns: list = []
    lock = threading.Lock()

    def guess():
        turn = throttle.admit("198.51.100.4")
        with lock:
            turns.append(turn)

    threads = [threading.Thread(target=guess) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    admitted = sorted(t.wait for t in turns if not t.refused)
    # Each turn starts after the previous one plus the delay its failure would earn; none waits over 8 s.
    assert admitted == [0.0, 0.5, 1.5, 3.5, 7.5]
    assert sum(t.refused for t in turns) == 5


def test_another_address_keeps_its_own_schedule_until_the_ceiling_locks_everyone():
    clock = SteppedClock()
    throttle = GateThrottle(lock_after=3, ceiling=6, clock=clock)
    for _ in range(3):
        fail(throttle, clock, "203.0.113.7")
    assert throttle.admit("203.0.113.7").refused
    other = throttle.admit("198.51.100.4")
    # checked, waiting only for the process-wide pace (one step per three failures), not for the locked address
    assert not other.refused and other.wait == throttle.delay(1)
    throttle.record(other, right=True)
    for address in ("198.51.100.4", "192.0.2.1", "192.0.2.2"):
        fail(throttle, clock, address)
    assert throttle.admit("192.0.2.99").refused  # six failures from everywhere: nobody is checked


def test_the_log_counts_failures_and_names_the_address_but_never_the_guess(caplog):
    clock = SteppedClock()
    throttle = GateThrottle(lock_after=2, clock=clock)
    caplog.set_level(logging.INFO)
    fail(throttle, clock, None)
    fail(throttle, clock, None)
    assert f"2 from {UNKNOWN}" in caplog.text and "locked" in caplog.text


# --- the gate, in fresh sessions -----------------------------------------------------------------------

@pytest.fixture
def gated(novita_env, monkeypatch):
    monkeypatch.setenv("APP_PASSWORD", PASSWORD)
    monkeypatch.setenv("APP_PASSWORD_LOCK_AFTER", "3")
    st.cache_resource.clear()  # a fresh process-wide throttle for this test
    yield
    st.cache_resource.clear()


def fresh_session() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    return at


def answer(at: AppTest, guess: str) -> str:
    at.text_input(key="gate.password").input(guess).run()
    assert not at.exception
    if not [t for t in at.text_input if t.key == "gate.password"]:
        return "open"
    (error,) = at.error
    return "refused" if "Too many wrong passwords" in error.value else "wrong"


def test_ten_fresh_sessions_guessing_meet_what_one_session_meets(gated, caplog):
    caplog.set_level(logging.INFO)
    one = fresh_session()
    alone = [answer(one, guess) for guess in GUESSES]

    st.cache_resource.clear()  # the same ten guesses again, each from a session of its own
    many = [answer(fresh_session(), guess) for guess in GUESSES]

    assert alone == many == ["wrong"] * 3 + ["refused"] * 7
    # While locked, not even the right password opens the gate, in any session.
    assert answer(fresh_session(), PASSWORD) == "refused"
    assert answer(one, PASSWORD) == "refused"
    assert f"3 from {UNKNOWN}" in caplog.text
    for guess in [*GUESSES, PASSWORD]:
        assert guess not in caplog.text


def test_the_right_password_still_opens_after_a_few_wrong_ones(gated):
    at = fresh_session()
    assert answer(at, "not it") == "wrong"
    assert answer(fresh_session(), PASSWORD) == "open"


@pytest.mark.parametrize(("address", "key"), [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # the same home or phone, another address
    ("::ffff:203.0.113.7", "203.0.113.7"),
    (None, UNKNOWN),
    ("not an address", UNKNOWN),
    (object(), UNKNOWN),
])
def test_attempts_are_counted_by_address(address, key):
    assert client_key(address) == key
