"""The shared key's budget (services/quota.py) under real threads, a real Redis and the loopback stand-in.

Both limiters run the same scenarios: sessions in threads each take a slot, then make a real HTTP call to
the stand-in, and the stand-in's own receive times are the evidence that the budget held.
"""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

import pytest
from PIL import Image

from services import budget, config, engines, images, jobs, novita, quota
from services.quota import MemoryLimiter, RedisLimiter, bucket_for
from tests.conftest import ROOT, TEST_KEY
from tests.novita_stub import Fault

EPS = 0.03  # clock and timestamp jitter (Redis counts whole milliseconds; a thread stamps a grant just after it)


def _tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 60, 40)).save(buf, "PNG")
    return buf.getvalue()


PHOTO = _tiny_png()


# --- a real redis-server on loopback ------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url():
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed. The test command (scripts/test.sh) installs it; "
                    "or run: apt-get install redis-server", pytrace=False)
    import redis

    port = _free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                pytest.fail(f"redis-server exited at start: {proc.stderr.read().decode(errors='replace')}")
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("redis-server did not answer PING within 10 s")
            time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()  # by PID: only the server this fixture started
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(params=["memory", "redis"])
def make_limiter(request):
    """A factory `(limit, window) -> Limiter` of each kind; Redis ones get a fresh key prefix per test."""
    if request.param == "memory":
        factory = lambda limit, window: MemoryLimiter(limit, window)  # noqa: E731
    else:
        url, prefix = request.getfixturevalue("redis_url"), f"test:{uuid.uuid4().hex}:"
        factory = lambda limit, window: RedisLimiter(url, limit, window, prefix=prefix)  # noqa: E731
    factory.kind = request.param
    return factory


# --- sessions in threads against the stand-in ---------------------------------------------------------

@dataclass
class SessionsRun:
    events: list[tuple[str, int]]  # ("enter" | "grant", session), in the order the limiter's lock saw them
    granted_at: dict[str, float]  # prompt sent after the grant -> monotonic time of that grant
    results: list[list[novita.ReplaceResult]]
    errors: list[BaseException]


def run_sessions(stub, limiter, *, sessions=4, requests=3, stagger=0.02) -> SessionsRun:
    """Each session starts `stagger` s after the previous one and makes `requests` calls in a row, each
    after `limiter.acquire`, over real HTTP to the stand-in.

    The line's order is recorded exactly, not from timestamps (which a loaded machine reorders): a ticket
    joins the line when it is appended to the bucket's queue (under the limiter's lock), and a grant is the
    `_take` that returns 0 (only the head of the line calls it, so grants are recorded one at a time).
    """
    bucket = bucket_for(TEST_KEY)
    run = SessionsRun([], {}, [[] for _ in range(sessions)], [])
    local = threading.local()
    take = limiter._take

    class Line(deque):
        def append(self, ticket):
            run.events.append(("enter", local.session))
            super().append(ticket)

    limiter._queues[bucket] = Line()

    def observed_take(b):
        wait = take(b)
        if wait == 0:
            run.events.append(("grant", local.session))
            local.granted_at = time.monotonic()
        return wait

    limiter._take = observed_take
    start = time.monotonic() + 0.05

    def session(i: int) -> None:
        local.session = i
        try:
            time.sleep(max(0.0, start + i * stagger - time.monotonic()))
            for n in range(requests):
                if not limiter.acquire(bucket, timeout=20):
                    raise AssertionError(f"session {i} request {n} was never granted")
                prompt = f"session {i} #{n}"
                run.granted_at[prompt] = local.granted_at
                run.results[i].append(novita.replace_background(PHOTO, prompt, "png", api_key=TEST_KEY,
                                                                base_url=stub.base_url))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            run.errors.append(exc)

    threads = [threading.Thread(target=session, args=(i,), daemon=True) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a session thread hung"
    return run


def window_violations(stub, run: SessionsRun, limit: int, window: float) -> list[tuple[list[str], float]]:
    """Groups of limit+1 requests that reached the stand-in within less than one window.

    Any limit+1 grants span at least the window, so any limit+1 arrivals must too — less only what the
    trip from grant to stand-in varied among them (measured per request: received_at minus its grant) and
    EPS for clock and timestamp jitter. The slack only ever shortens the span we demand, so a correct
    limiter cannot fail on a busy machine, while one letting limit+1 through together misses by nearly
    a whole window.
    """
    arrivals = sorted((r.received_at, r.received_at - run.granted_at[r.json["prompt"]], r.json["prompt"])
                      for r in stub.requests)
    found = []
    for i in range(len(arrivals) - limit):
        group = arrivals[i:i + limit + 1]
        span = group[-1][0] - group[0][0]
        trip_spread = max(d for _, d, _ in group) - min(d for _, d, _ in group)
        if span < window - EPS - trip_spread:
            found.append(([p for _, _, p in group], span))
    return found


LIMIT, WINDOW, SESSIONS, REQUESTS = 3, 1.0, 4, 3


def test_budget_holds_no_request_is_lost_and_the_line_is_fair(stub, make_limiter):
    stub.latency = 0.15  # each call takes a while, so sessions come back for their next slot while others wait
    run = run_sessions(stub, make_limiter(LIMIT, WINDOW), sessions=SESSIONS, requests=REQUESTS)
    assert not run.errors, run.errors

    # no request is lost
    assert len(stub.requests) == SESSIONS * REQUESTS
    assert sorted(r.json["prompt"] for r in stub.requests) == sorted(run.granted_at)
    assert [len(r) for r in run.results] == [REQUESTS] * SESSIONS
    assert all(images.sniff_format(r.image) == "png" for rs in run.results for r in rs)

    # never more than LIMIT requests reached the stand-in within any window
    assert window_violations(stub, run, LIMIT, WINDOW) == []

    # FIFO: slots were granted in exactly the order tickets joined the line
    entered = [s for kind, s in run.events if kind == "enter"]
    granted = [s for kind, s in run.events if kind == "grant"]
    assert len(granted) == SESSIONS * REQUESTS
    assert granted == entered
    # and the line was real, so the check above is not vacuous: most tickets had to wait
    waited = [s for i, (kind, s) in enumerate(run.events) if kind == "enter" and run.events[i + 1] != ("grant", s)]
    assert len(waited) >= SESSIONS * REQUESTS // 2

    # nobody starves: while a session waits in line, no other session is served twice
    for i, (kind, waiting) in enumerate(run.events):
        if kind != "enter":
            continue
        j = run.events.index(("grant", waiting), i)
        served = [s for k, s in run.events[i:j] if k == "grant"]
        assert all(served.count(s) <= 1 for s in served), f"session {waiting} waited while {served} were served"


def test_the_window_check_catches_a_limiter_one_too_generous(stub):
    """The check above can fail: the same scenario through a limiter allowing LIMIT + 1 is caught."""
    run = run_sessions(stub, MemoryLimiter(LIMIT + 1, WINDOW), sessions=SESSIONS, requests=2)
    assert not run.errors, run.errors
    assert len(stub.requests) == SESSIONS * 2
    assert window_violations(stub, run, LIMIT, WINDOW) != []


# --- waiting in line ----------------------------------------------------------------------------------

class Waiter:
    """A thread in `acquire`, with what `on_wait` told it and how it ended."""

    def __init__(self, limiter, bucket, timeout=5.0):
        self.cancel = threading.Event()
        self.queued = threading.Event()
        self.reports: list[tuple[int, float]] = []
        self.result: bool | None = None
        self.ended_at: float | None = None
        self.thread = threading.Thread(target=self._run, args=(limiter, bucket, timeout), daemon=True)
        self.thread.start()

    def _on_wait(self, place, seconds):
        self.reports.append((place, seconds))
        self.queued.set()

    def _run(self, limiter, bucket, timeout):
        self.result = limiter.acquire(bucket, cancel=self.cancel, on_wait=self._on_wait, timeout=timeout)
        self.ended_at = time.monotonic()

    def join(self, timeout=5.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "acquire did not return"
        return self.result


def queue_up(limiter, bucket, count, **kwargs) -> list[Waiter]:
    """Start `count` waiters one after another, each only once the previous one is in line."""
    waiters = []
    for _ in range(count):
        waiter = Waiter(limiter, bucket, **kwargs)
        assert waiter.queued.wait(10), "a waiter never reported its place in line"
        waiters.append(waiter)
    return waiters


def test_a_cancelled_waiter_leaves_at_once_and_the_next_still_gets_its_turn(make_limiter):
    # Bounds with seconds of slack for a busy machine: a wrong limiter is off by a whole 3 s window.
    limiter, bucket = make_limiter(1, 3.0), bucket_for(TEST_KEY)
    before_grant = time.monotonic()  # the grant is stamped after this: a lower bound that load cannot break
    assert limiter.acquire(bucket, timeout=5)
    first_grant = time.monotonic()
    head, second = queue_up(limiter, bucket, 2)
    head.cancel.set()
    assert head.join() is False
    assert head.ended_at < first_grant + 3.0  # left before the slot it waited for came free
    assert second.join(timeout=10) is True
    assert second.ended_at - before_grant >= 3.0 - EPS  # not before the slot freed
    assert second.ended_at - first_grant < 5.0  # its turn when the slot frees, not a window later


def test_a_cancelled_waiter_behind_does_not_hold_the_line(make_limiter):
    # a window long enough for three threads to line up on a busy machine before the slot frees
    limiter, bucket = make_limiter(1, 1.0), bucket_for(TEST_KEY)
    assert limiter.acquire(bucket, timeout=5)
    head, middle, last = queue_up(limiter, bucket, 3)
    middle.cancel.set()
    assert middle.join(timeout=5) is False
    assert head.join(timeout=10) is True
    assert last.join(timeout=10) is True
    assert head.ended_at <= last.ended_at


def test_on_wait_reports_place_in_line_and_a_positive_estimate(make_limiter):
    # a long window: every waiter is cancelled at the end, so it costs nothing, and no slot frees meanwhile
    # however slow the machine
    window = 20.0
    limiter, bucket = make_limiter(1, window), bucket_for(TEST_KEY)
    before_grant = time.monotonic()
    assert limiter.acquire(bucket, timeout=5)
    waiters = queue_up(limiter, bucket, 3)
    queued = time.monotonic() - before_grant  # however long a busy machine took to line them up
    deadline = time.monotonic() + 10  # a poll or two: every waiter reports again
    while any(len(w.reports) < 2 for w in waiters) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(len(w.reports) >= 2 for w in waiters), [w.reports for w in waiters]
    firsts = [w.reports[0] for w in waiters]
    assert [place for place, _ in firsts] == [1, 2, 3]
    assert all(seconds > 0 for w in waiters for _, seconds in w.reports)
    assert window - queued - EPS <= firsts[0][1] <= window + EPS  # the head waits for the oldest grant to expire
    # later in line: the head's wait plus one slot (window / limit) per waiter ahead, less the time that
    # passed between their reports
    head_wait = firsts[0][1]
    assert firsts[1][1] >= head_wait + window - queued - EPS
    assert firsts[2][1] >= head_wait + 2 * window - queued - EPS
    latest = [w.reports[-1][0] for w in waiters]
    assert latest == [1, 2, 3]
    for w in waiters:
        w.cancel.set()
    assert [w.join() for w in waiters] == [False, False, False]


def test_remaining_counts_down_and_recovers_after_the_window(make_limiter):
    window = 2.0  # far longer than the counting down below takes on a busy machine
    limiter, bucket = make_limiter(3, window), bucket_for(TEST_KEY)
    assert limiter.remaining(bucket) == 3
    last_grant = None
    for left in (2, 1, 0):
        assert limiter.acquire(bucket, timeout=5)
        last_grant = time.monotonic()
        assert limiter.remaining(bucket) == left
    assert limiter.acquire(bucket, timeout=0.1) is False  # a timed-out wait uses nothing
    assert limiter.remaining(bucket) == 0
    time.sleep(max(0.0, last_grant + window + 0.05 - time.monotonic()))  # every grant is a window old now
    assert limiter.remaining(bucket) == 3
    assert limiter.acquire(bucket, timeout=5)


def test_timeout_returns_false_without_a_slot(make_limiter):
    limiter, bucket = make_limiter(1, 30.0), bucket_for(TEST_KEY)
    assert limiter.acquire(bucket, timeout=5)
    started = time.monotonic()
    assert limiter.acquire(bucket, timeout=0.2) is False
    assert time.monotonic() - started < 15.0  # gave up after its 0.2 s; the slot frees only after 30 s


def test_penalize_holds_every_caller_for_about_the_given_seconds(make_limiter):
    # a long window: it only shows when a limiter wrongly holds callers for it, so it costs nothing here
    limiter, bucket = make_limiter(10, 30.0), bucket_for(TEST_KEY)
    penalized_at = time.monotonic()
    limiter.penalize(bucket, 1.0)
    assert limiter.acquire(bucket, timeout=0.1) is False
    other = bucket_for("sk_someone_else")
    assert limiter.acquire(other, timeout=5)  # only that key's bucket is held back
    waiters = [Waiter(limiter, bucket, timeout=15) for _ in range(3)]
    assert [w.join(timeout=20) for w in waiters] == [True, True, True]
    for w in waiters:
        assert 1.0 - EPS <= w.ended_at - penalized_at < 15.0  # held, yet not for the 30 s window


def test_buckets_are_independent(make_limiter):
    limiter = make_limiter(2, 30.0)
    mine, theirs = bucket_for(TEST_KEY), bucket_for("sk_their_own_key_42")
    assert limiter.acquire(mine, timeout=5) and limiter.acquire(mine, timeout=5)
    assert limiter.acquire(mine, timeout=0.1) is False
    assert limiter.remaining(mine) == 0 and limiter.remaining(theirs) == 2
    assert limiter.acquire(theirs, timeout=5) and limiter.acquire(theirs, timeout=5)
    assert limiter.remaining(theirs) == 0


def test_bucket_for_never_holds_the_key_and_is_stable():
    bucket = bucket_for(TEST_KEY)
    assert TEST_KEY not in bucket
    assert not any(TEST_KEY[i:i + 8] in bucket for i in range(len(TEST_KEY) - 7))
    assert bucket == bucket_for(TEST_KEY)
    assert bucket != bucket_for(TEST_KEY + "x")
    # stable across processes (no per-process hash seed), so replicas agree on a bucket's name
    code = f"from services.quota import bucket_for; print(bucket_for({TEST_KEY!r}))"
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == bucket


# --- Redis: replicas share one budget ------------------------------------------------------------------

def test_two_redis_replicas_share_one_budget(redis_url):
    prefix = f"test:{uuid.uuid4().hex}:"
    # a window and a penalty far longer than the checks made within them take on a busy machine
    one = RedisLimiter(redis_url, 2, 2.0, prefix=prefix)
    two = RedisLimiter(redis_url, 2, 2.0, prefix=prefix)
    bucket = bucket_for(TEST_KEY)
    assert one.acquire(bucket, timeout=5)
    assert two.remaining(bucket) == 1
    assert two.acquire(bucket, timeout=5)
    last_grant = time.monotonic()
    assert one.acquire(bucket, timeout=0.1) is False
    assert two.acquire(bucket, timeout=0.1) is False
    assert one.remaining(bucket) == two.remaining(bucket) == 0
    time.sleep(max(0.0, last_grant + 2.05 - time.monotonic()))
    assert two.remaining(bucket) == 2
    one.penalize(bucket, 1.5)  # a 429 seen by one replica holds the other back too
    assert two.acquire(bucket, timeout=0.2) is False
    assert two.acquire(bucket, timeout=10)


def test_a_waiter_on_one_replica_is_served_when_the_shared_window_frees(redis_url):
    prefix = f"test:{uuid.uuid4().hex}:"
    one = RedisLimiter(redis_url, 1, 2.0, prefix=prefix)
    two = RedisLimiter(redis_url, 1, 2.0, prefix=prefix)
    bucket = bucket_for(TEST_KEY)
    before_grant = time.monotonic()  # the grant is stamped after this: a lower bound that load cannot break
    assert one.acquire(bucket, timeout=5)
    (waiter,) = queue_up(two, bucket, 1, timeout=15)
    assert waiter.reports[0][0] == 1 and waiter.reports[0][1] > 0
    assert waiter.join(timeout=15) is True
    assert waiter.ended_at - before_grant >= 2.0 - EPS


# --- settings -------------------------------------------------------------------------------------------

def test_from_settings_reads_limit_window_and_redis_url(monkeypatch, redis_url):
    monkeypatch.delenv("RATE_LIMIT_REDIS_URL", raising=False)
    monkeypatch.setenv("NOVITA_RATE_LIMIT_PER_MINUTE", "7")
    monkeypatch.setenv("RATE_LIMIT_WINDOW_SECONDS", "2.5")
    memory = quota.from_settings()
    assert type(memory) is MemoryLimiter and (memory.limit, memory.window) == (7, 2.5)
    monkeypatch.setenv("RATE_LIMIT_REDIS_URL", redis_url)
    shared = quota.from_settings()
    assert type(shared) is RedisLimiter and (shared.limit, shared.window) == (7, 2.5)
    monkeypatch.delenv("RATE_LIMIT_REDIS_URL")
    monkeypatch.setenv("NOVITA_RATE_LIMIT_PER_MINUTE", "lots")
    monkeypatch.setenv("RATE_LIMIT_WINDOW_SECONDS", "a minute")
    fallback = quota.from_settings()
    assert (fallback.limit, fallback.window) == (config.DEFAULT_PER_MINUTE, 60.0)


# --- a 429 teaches the limiter ------------------------------------------------------------------------

class ShiftedClock:
    """time.monotonic, moved forward on demand: to look past a long penalty without waiting for it."""

    def __init__(self):
        self.shift = 0.0

    def __call__(self):
        return time.monotonic() + self.shift


@pytest.mark.parametrize(("fault", "held_for"), [
    pytest.param(Fault("429", retry_after=31), 31.0, id="retry-after-31"),
    pytest.param("429-no-retry-after", jobs.RATE_LIMIT_BACKOFF, id="no-retry-after"),
])
def test_a_429_through_a_send_penalizes_the_keys_bucket(novita_env, fault, held_for):
    novita_env.always(fault)
    clock = ShiftedClock()
    limiter = MemoryLimiter(10, 60.0, clock=clock)
    ledger = budget.Ledger(limiter, daily_limit=100)
    prepared = images.prepare(PHOTO, "tiny.png")
    cancel, back_in_line = threading.Event(), threading.Event()
    outcome = {}

    def send():
        try:
            jobs.send(prepared, "in a warehouse", "png", engine=engines.NOVITA, api_key=TEST_KEY, ledger=ledger,
                      cancel=cancel, progress=lambda **report: report.get("waiting") and back_in_line.set())
        except Exception as exc:  # noqa: BLE001 - checked below
            outcome["error"] = exc

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    # the 429 is back and the photo waits in line again, behind the penalty: any re-send below the limiter
    # would have reached the stand-in before this
    assert back_in_line.wait(10), "the refused photo never went back in line"
    assert len(novita_env.requests) == 1  # no retry below the limiter
    bucket = bucket_for(TEST_KEY)
    assert limiter.acquire(bucket, timeout=0.2) is False  # every session of that key now holds off
    assert limiter.acquire(bucket_for("sk_another_key"), timeout=5)  # other keys are not punished
    clock.shift = held_for - 5.0  # still held before the learned time (seconds of room for a slow machine)
    assert limiter.acquire(bucket, timeout=0.2) is False
    cancel.set()  # the photo waiting in line leaves it: nothing more is sent
    thread.join(5)
    assert isinstance(outcome["error"], jobs.Cancelled) and len(novita_env.requests) == 1
    clock.shift = held_for + 1.0
    assert limiter.acquire(bucket, timeout=5)  # and free just after it
