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

# Seconds no call may hold a page: a cap only a hung call reaches (one Redis call costs at most its short
# REDIS_TIMEOUT, 0.25 s); a slow machine stays far under it. What each test holds to exactly is how often
# Redis was asked: once, then memory.
STALL = 5.0


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


@pytest.fixture
def asked(monkeypatch) -> list[int]:
    """One entry per call that went to Redis (rather than to the in-memory fallback) during the test; Redis
    is not tried again after a fault for the rest of the test."""
    monkeypatch.setattr(quota, "REDIS_RETRY", 600.0)
    calls: list[int] = []
    call = quota.RedisFallback.call

    def counted(self, remote, local):
        def asking():
            calls.append(1)
            return remote()

        return call(self, asking, local)

    monkeypatch.setattr(quota.RedisFallback, "call", counted)
    return calls


def test_the_redis_client_gives_up_after_its_short_timeouts():
    client = quota.redis_client("redis://127.0.0.1:1/0")
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == quota.REDIS_TIMEOUT <= 0.5


def test_redis_stopped_mid_run_keeps_both_limits_from_memory(redis_server, caplog, asked):
    url, stop = redis_server
    caplog.set_level(logging.WARNING, logger="services.quota")
    ledger, bucket, account = make_ledger(url, rate=3, daily=3), bucket_for(TEST_KEY), Account(cap=100)
    for _ in range(2):  # two images through Redis
        ledger.reserve(account, owner_key=True, cost=0.01).spend()
        assert ledger.limiter.acquire(bucket, timeout=0.5)
    assert ledger.today().used == 2 and ledger.limiter.remaining(bucket) == 1

    stop()  # Redis goes away mid-run
    asked.clear()

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
    assert len(asked) == 1  # one call found Redis gone; every later one went straight to memory
    outages = [r for r in caplog.records if "Redis is unusable" in r.getMessage()]
    assert len(outages) == 1, [r.getMessage() for r in outages]  # once, not once per call


def test_a_redis_that_never_answers_stalls_no_one_and_the_limits_hold(silent_socket, asked, monkeypatch):
    ledger, bucket, account = make_ledger(silent_socket, rate=2, daily=2), bucket_for(TEST_KEY), Account(cap=100)
    # several sessions at once: none waits behind another's Redis call (no round trip under the lock)
    results: list[tuple[bool, float]] = []
    lock_free: list[bool] = []  # while a Redis call is out: could another thread take the limiter's lock?
    call = quota.RedisFallback.call

    def probing(self, remote, local):
        def asking():
            probe = threading.Thread(target=lambda: lock_free.append(_take_and_give(ledger.limiter._cond)))
            probe.start()
            probe.join(STALL + 5)
            return remote()

        return call(self, asking, local)

    monkeypatch.setattr(quota.RedisFallback, "call", probing)

    def session():
        results.append(timed(lambda: ledger.limiter.acquire(bucket, timeout=2)))

    threads = [threading.Thread(target=session, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 + STALL + 10)
    assert not any(thread.is_alive() for thread in threads), "a session hung on Redis"
    granted = [ok for ok, _ in results]
    assert granted.count(True) == 2 and granted.count(False) == 2  # the rate limit held from memory
    assert all(seconds < 2 + STALL for _, seconds in results)  # each gave up after its own 2 s at most
    assert len(asked) == 1 and lock_free == [True]  # one Redis call, made with the lock let go; then memory

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
    assert len(asked) == 1  # none of these asked the hung Redis again


def _take_and_give(lock) -> bool:
    """True when `lock` could be taken at once from this thread (a lock held elsewhere waits out the cap)."""
    if not lock.acquire(timeout=STALL):
        return False
    lock.release()
    return True


def test_the_first_call_to_a_hung_redis_costs_at_most_its_short_timeout(silent_socket, asked):
    limiter = RedisLimiter(silent_socket, 5, 60.0, prefix=f"test:{uuid.uuid4().hex}:")
    left, seconds = timed(lambda: limiter.remaining(bucket_for(TEST_KEY)))
    # it waited out its short read timeout once (a lower bound), and nothing like a hang (a generous cap)
    assert left == 5 and quota.REDIS_TIMEOUT * 0.9 <= seconds < STALL
    assert len(asked) == 1 and limiter.fallback.down
    left, seconds = timed(lambda: limiter.remaining(bucket_for(TEST_KEY)))
    assert left == 5 and len(asked) == 1  # Redis is not asked again until REDIS_RETRY has passed


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


def test_a_page_with_a_hung_redis_still_runs_and_does_not_stall(novita_env, monkeypatch, silent_socket, asked):
    """The app pointed at a Redis that never answers: the first page render asks Redis once (one short
    timeout), later ones ask nothing (memory), and a run goes through on the in-memory budget."""
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
    per_page, asked_per_page = [], []
    for _ in range(3):
        spent.clear()
        asked.clear()
        at.run()
        assert not at.exception
        per_page.append(sum(spent))
        asked_per_page.append(len(asked))
        assert spent, "the page used no Redis call: the test would prove nothing"
    assert asked_per_page == [1, 0, 0], asked_per_page  # one short timeout on the first page, then memory
    assert max(per_page) < STALL, per_page
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
