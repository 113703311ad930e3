"""Redis faults never open the gate: the rate limit and the daily ceiling still hold, from this process's
memory, when a real redis-server is stopped mid-run or a socket accepts and never answers; and no call
stalls a page (short timeouts, no Redis round trip under the process-wide lock)."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
import time
import uuid

import pytest

from services import budget, quota
from services.budget import Account, BudgetExceeded, Ledger, RedisDayCount
from services.quota import RedisLimiter, bucket_for
from tests.conftest import TEST_KEY

STALL = 1.0  # seconds: no call may hold a page longer than this


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_server():
    """A redis-server of this test's own, which the test may stop; yields (url, stop)."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)", pytrace=False)
    import redis

    port = _free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            if client.ping():
                break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    client.close()

    def stop():
        proc.terminate()  # by PID: only the server this fixture started
        proc.wait(timeout=5)

    try:
        yield url, stop
    finally:
        if proc.poll() is None:
            stop()


@pytest.fixture
def silent_socket():
    """A loopback socket that accepts connections and never answers: a hung Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)  # read nothing, answer nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    listener.close()


def make_ledger(url: str, *, rate: int, daily: int) -> Ledger:
    prefix = f"test:{uuid.uuid4().hex}:"
    limiter = RedisLimiter(url, rate, 60.0, prefix=prefix)
    return Ledger(limiter, daily_limit=daily, days=RedisDayCount(limiter.client, prefix=prefix,
                                                                 fallback=limiter.fallback))


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_redis_stopped_mid_run_keeps_both_limits_from_memory(redis_server, caplog):
    url, stop = redis_server
    caplog.set_level(logging.WARNING, logger="services.quota")
    ledger, bucket, account = make_ledger(url, rate=3, daily=3), bucket_for(TEST_KEY), Account(cap=100)
    for _ in range(2):  # two images through Redis
        ledger.reserve(account, owner_key=True, cost=0.01).spend()
        assert ledger.limiter.acquire(bucket, timeout=0.5)
    assert ledger.today().used == 2 and ledger.limiter.remaining(bucket) == 1

    stop()  # Redis goes away mid-run

    granted, seconds = timed(lambda: ledger.limiter.acquire(bucket, timeout=0.5))
    assert granted and seconds < STALL  # the third of three this minute
    assert ledger.limiter.acquire(bucket, timeout=0.3) is False  # the fourth: the rate still holds
    reservation, seconds = timed(lambda: ledger.reserve(account, owner_key=True, cost=0.01))
    assert seconds < STALL
    reservation.spend()  # the third of three today
    with pytest.raises(BudgetExceeded) as refused:
        ledger.reserve(account, owner_key=True, cost=0.01)  # the ceiling it knew still holds
    assert refused.value.kind == budget.DAY
    today, seconds = timed(ledger.today)
    assert (today.used, today.left) == (3, 0) and seconds < STALL
    outages = [r for r in caplog.records if "Redis is unusable" in r.getMessage()]
    assert len(outages) == 1, [r.getMessage() for r in outages]  # once, not once per call


def test_a_redis_that_never_answers_stalls_no_one_and_the_limits_hold(silent_socket):
    ledger, bucket, account = make_ledger(silent_socket, rate=2, daily=2), bucket_for(TEST_KEY), Account(cap=100)
    # several sessions at once: none waits behind another's Redis call (no round trip under the lock)
    results: list[tuple[bool, float]] = []

    def session():
        results.append(timed(lambda: ledger.limiter.acquire(bucket, timeout=2)))

    threads = [threading.Thread(target=session, daemon=True) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert time.monotonic() - started < 2 * STALL + 0.5
    granted = [ok for ok, _ in results]
    assert granted.count(True) == 2 and granted.count(False) == 2  # the rate limit held from memory
    assert all(seconds < 2 + STALL for _, seconds in results)

    for _ in range(2):
        reservation, seconds = timed(lambda: ledger.reserve(account, owner_key=True, cost=0.01))
        assert seconds < STALL
        reservation.spend()
    with pytest.raises(BudgetExceeded):
        ledger.reserve(account, owner_key=True, cost=0.01)
    # what a page asks for its sidebar answers at once from memory
    (left, seconds) = timed(lambda: ledger.limiter.remaining(bucket))
    assert left == 0 and seconds < STALL
    today, seconds = timed(ledger.today)
    assert today.left == 0 and seconds < STALL


def test_the_first_call_to_a_hung_redis_costs_at_most_its_short_timeout(silent_socket):
    limiter = RedisLimiter(silent_socket, 5, 60.0, prefix=f"test:{uuid.uuid4().hex}:")
    left, seconds = timed(lambda: limiter.remaining(bucket_for(TEST_KEY)))
    assert left == 5 and seconds < quota.REDIS_TIMEOUT * 2 + 0.3
    left, seconds = timed(lambda: limiter.remaining(bucket_for(TEST_KEY)))
    assert seconds < 0.05  # Redis is not asked again until REDIS_RETRY has passed
    assert limiter.fallback.down


def test_redis_shares_the_daily_ceiling_between_replicas(redis_server):
    url, _ = redis_server
    prefix = f"test:{uuid.uuid4().hex}:"
    replicas = []
    for _ in range(2):
        limiter = RedisLimiter(url, 100, 60.0, prefix=prefix)
        replicas.append(Ledger(limiter, daily_limit=3, days=RedisDayCount(limiter.client, prefix=prefix)))
    one, two = replicas
    account_one, account_two = Account(cap=10), Account(cap=10)
    one.reserve(account_one, owner_key=True, cost=0.01).spend()
    two.reserve(account_two, owner_key=True, cost=0.01).spend()
    held = one.reserve(account_one, owner_key=True, cost=0.01)  # in flight: it counts already
    assert two.today().used == 3
    with pytest.raises(BudgetExceeded):
        two.reserve(account_two, owner_key=True, cost=0.01)
    held.release()  # Novita certainly made nothing: the image is free again, for every replica
    assert two.today().used == 2
    two.reserve(account_two, owner_key=True, cost=0.01).spend()
    assert one.today().left == 0


def test_a_page_with_a_hung_redis_still_runs_and_does_not_stall(novita_env, monkeypatch, silent_socket):
    """The app pointed at a Redis that never answers: every page render spends well under a second in its
    Redis calls (one short timeout, then memory), and a run goes through on the in-memory budget."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT, photo_bytes

    spent: list[float] = []
    call = quota.RedisFallback.call

    def timed_call(self, remote, local):
        started = time.monotonic()
        try:
            return call(self, remote, local)
        finally:
            spent.append(time.monotonic() - started)

    monkeypatch.setattr(quota.RedisFallback, "call", timed_call)
    monkeypatch.setenv("RATE_LIMIT_REDIS_URL", silent_socket)
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    per_page = []
    for _ in range(3):
        spent.clear()
        at.run()
        assert not at.exception
        per_page.append(sum(spent))
        assert spent, "the page asked Redis nothing: the test would prove nothing"
    assert max(per_page) < STALL / 2, per_page  # one short timeout on the first page, then memory
    at.file_uploader(key="upload").set_value(("mug.jpg", photo_bytes(), "image/jpeg")).run()
    at.text_area(key="prompt").input("in a warehouse")
    at.button(key="replace.run").click().run()
    assert not at.exception and not at.error
    assert len(at.session_state["history"]) == 1 and len(novita_env.requests) == 1
    assert at.session_state["account"].owner_spent == 1
    st.cache_resource.clear()


def test_a_reservation_counted_in_memory_during_an_outage_is_not_given_back_in_redis(redis_server):
    """Redis is unusable for a moment (its fallback is down): a reservation counted in this process's memory
    then, released after Redis answers again, must not lower the shared count it was never part of."""
    url, _ = redis_server
    prefix = f"test:{uuid.uuid4().hex}:"
    limiter = RedisLimiter(url, 100, 60.0, prefix=prefix)
    days = RedisDayCount(limiter.client, prefix=prefix)
    ledger = Ledger(limiter, daily_limit=10, days=days)
    account = Account(cap=10)
    shared = [ledger.reserve(account, owner_key=True, cost=0.01) for _ in range(3)]
    days.fallback._down_until = time.monotonic() + 60  # as after a fault: memory only, for a while
    in_memory = ledger.reserve(account, owner_key=True, cost=0.01)
    days.fallback._down_until = 0.0  # Redis answers again
    in_memory.release()
    assert ledger.today().used == 3  # the three held in Redis still count for every replica
    for held in shared:
        held.spend()
