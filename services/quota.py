"""The shared key's budget: a sliding-window rate limiter keyed by a hash of the API key.

One limiter serves every session of the process (the page keeps it in `st.cache_resource`); with
`RATE_LIMIT_REDIS_URL` set, the window lives in Redis so several replicas share one budget. Waiters
are served first come, first served, and see their place in line and an estimate of the wait.

Redis faults never open the gate: every Redis call has a short timeout and runs outside the process-wide
lock, and on a fault the process falls back to the window it keeps in memory (`RedisFallback`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable

from services import config

log = logging.getLogger(__name__)

POLL = 0.25  # seconds between checks while waiting; also how soon a cancel is noticed
REDIS_TIMEOUT = 0.25  # seconds for one Redis call: a hung Redis must not stall a page
REDIS_RETRY = 15.0  # seconds on the in-memory fallback before Redis is tried again

OnWait = Callable[[int, float], None]  # (place in line from 1, estimated seconds)


class Suspended(Exception):
    """Sending on this key is paused after an owner-side refusal; nothing was sent. `kind` is the refusal's
    (e.g. "balance"), `seconds_left` how long the pause still runs."""

    def __init__(self, kind: str, seconds_left: float) -> None:
        super().__init__(f"sending on this key is paused ({kind}) for {seconds_left:.0f} s more")
        self.kind, self.seconds_left = kind, seconds_left


def bucket_for(api_key: str) -> str:
    """The budget's name for a key: a hash, so the key itself is never held or stored."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:24]


class Limiter:
    """FIFO-fair waiting in front of a window store; subclasses say whether a slot is free now."""

    remote = False  # a store across the network is asked outside the lock, so a slow one stalls no one else

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = max(1, int(limit))
        self.window = float(window)
        self._cond = threading.Condition()
        self._queues: dict[str, deque] = {}
        self._head_wait: dict[str, tuple[float, float]] = {}  # bucket → (seconds the head must wait, when said)
        self._paused: dict[str, tuple[float, str]] = {}  # bucket → (monotonic end of the pause, refusal kind)

    # The store: `_take` grants a slot or returns the seconds until one may be free.
    def _take(self, bucket: str) -> float:
        raise NotImplementedError

    def remaining(self, bucket: str) -> int:
        """Slots left in the current window for this bucket."""
        raise NotImplementedError

    def penalize(self, bucket: str, seconds: float) -> None:
        """Hold every caller of this bucket for `seconds` (Novita answered 429 anyway)."""
        raise NotImplementedError

    def suspend(self, bucket: str, seconds: float, kind: str) -> None:
        """Send nothing on this bucket for `seconds`: its owner must act first (credit, key, access…)."""
        with self._cond:
            self._paused[bucket] = (time.monotonic() + max(0.0, seconds), kind)
            self._cond.notify_all()

    def suspended(self, bucket: str) -> Suspended | None:
        """The pause on this bucket while it runs, else None."""
        with self._cond:
            until, kind = self._paused.get(bucket, (0.0, ""))
        left = until - time.monotonic()
        return Suspended(kind, left) if left > 0 else None

    def acquire(self, bucket: str, *, cancel: threading.Event | None = None, on_wait: OnWait | None = None,
                timeout: float | None = None) -> bool:
        """Wait for a slot in line; True when granted, False when cancelled or timed out."""
        ticket = object()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            queue = self._queues.setdefault(bucket, deque())
            queue.append(ticket)
            try:
                while True:
                    if (cancel is not None and cancel.is_set()) or (deadline and time.monotonic() > deadline):
                        return False
                    place = queue.index(ticket)
                    wait = self._take_unlocked(bucket) if place == 0 else None
                    if wait == 0:
                        return True
                    if wait is not None:
                        self._head_wait[bucket] = (wait, time.monotonic())
                    if on_wait is not None:
                        on_wait(place + 1, self._estimate_head(bucket) + place * self.window / self.limit)
                    self._cond.wait(min(POLL, wait) if wait else POLL)
            finally:
                queue.remove(ticket)
                self._cond.notify_all()

    def _take_unlocked(self, bucket: str) -> float:
        """`_take` for the head of the line; a remote store's round trip happens with the lock let go
        (only the head of a bucket's line calls this, so the line's order holds)."""
        if not self.remote:
            return self._take(bucket)
        self._cond.release()
        try:
            return self._take(bucket)
        finally:
            self._cond.acquire()

    def _estimate_head(self, bucket: str) -> float:
        """Seconds until the head of the line is served, from what the store last told it."""
        wait, said = self._head_wait.get(bucket, (0.0, 0.0))
        return max(0.0, wait - (time.monotonic() - said))


class MemoryLimiter(Limiter):
    """The window kept in this process: right for a single Streamlit server."""

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(limit, window)
        self._clock = clock
        self._grants: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}

    def _grants_now(self, bucket: str, now: float) -> deque[float]:
        grants = self._grants.setdefault(bucket, deque())
        while grants and grants[0] <= now - self.window:
            grants.popleft()
        return grants

    def _take(self, bucket: str) -> float:
        now = self._clock()
        blocked = self._blocked.get(bucket, 0.0) - now
        grants = self._grants_now(bucket, now)
        if blocked > 0:
            return blocked
        if len(grants) < self.limit:
            grants.append(now)
            return 0
        return max(grants[0] + self.window - now, 0.01)

    def remaining(self, bucket: str) -> int:
        with self._cond:
            return max(0, self.limit - len(self._grants_now(bucket, self._clock())))

    def take(self, bucket: str) -> float:
        """`_take` under this limiter's own lock: the fallback path of a Redis limiter."""
        with self._cond:
            return self._take(bucket)

    def record(self, bucket: str) -> None:
        """Count a grant made elsewhere (by Redis), so a later fallback knows this process's recent sends."""
        with self._cond:
            self._grants_now(bucket, self._clock()).append(self._clock())

    def penalize(self, bucket: str, seconds: float) -> None:
        with self._cond:
            until = self._clock() + max(0.0, seconds)
            self._blocked[bucket] = max(self._blocked.get(bucket, 0.0), until)
            self._cond.notify_all()


# Atomic in Redis: drop grants older than the window, then grant or say how long until the oldest expires.
# Time comes from the Redis server so every replica agrees on it. Returns milliseconds to wait (0 = granted).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then return blocked - now end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(tonumber(oldest[2]) + window - now, 10)
"""
_REMAINING = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
return redis.call('ZCARD', KEYS[1])
"""
_PENALIZE = """
local t = redis.call('TIME')
local until_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > current then redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1])) end
return 0
"""


class RedisFallback:
    """Runs a Redis call, or its in-memory stand-in while Redis is faulty: a fault is logged once, the
    process keeps the budget it knew in memory, and Redis is tried again after `REDIS_RETRY` seconds."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._lock = threading.Lock()  # guards the two fields below only, never held across a call
        self._down_until = 0.0
        self._down = False

    def call(self, remote: Callable[[], object], local: Callable[[], object]) -> object:
        """`remote()` while Redis answers; `local()` when it fails or failed a moment ago."""
        if time.monotonic() < self._down_until:
            return local()
        try:
            result = remote()
        except Exception as exc:  # any Redis or socket fault: the budget must still hold
            with self._lock:
                self._down_until = time.monotonic() + REDIS_RETRY
                first, self._down = not self._down, True
            if first:
                log.warning("%s: Redis is unusable (%s); keeping the budget in this process's memory",
                            self._what, type(exc).__name__)
            return local()
        if self._down:
            with self._lock:
                self._down = False
            log.warning("%s: Redis answers again; the budget is shared again", self._what)
        return result

    @property
    def down(self) -> bool:
        """True while the in-memory fallback is in use."""
        return self._down


def redis_client(url: str):
    """A Redis client with short timeouts, so a slow or hung Redis costs a page a fraction of a second."""
    import redis  # only needed when RATE_LIMIT_REDIS_URL is set
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT,
                                retry=Retry(NoBackoff(), 0))  # one try: the fallback is the retry


class RedisLimiter(Limiter):
    """The window kept in Redis: one budget shared by every replica behind a load balancer. While Redis is
    faulty the window in this process's memory takes over; it also records every grant Redis made here."""

    remote = True

    def __init__(self, url: str, limit: int, window: float = 60.0, prefix: str = "rbg:quota:",
                 client=None) -> None:
        super().__init__(limit, window)
        self._redis = client or redis_client(url)
        self._prefix = prefix
        self._take_script = self._redis.register_script(_TAKE)
        self._remaining_script = self._redis.register_script(_REMAINING)
        self._penalize_script = self._redis.register_script(_PENALIZE)
        self._local = MemoryLimiter(limit, window)
        self.fallback = RedisFallback("owner's budget")

    @property
    def client(self):
        """The Redis client, for the daily count that lives beside the window."""
        return self._redis

    def _keys(self, bucket: str) -> list[str]:
        return [f"{self._prefix}{bucket}:window", f"{self._prefix}{bucket}:blocked"]

    def _take(self, bucket: str) -> float:
        def remote() -> float:
            member = uuid.uuid4().hex
            wait_ms = int(self._take_script(keys=self._keys(bucket),
                                            args=[int(self.window * 1000), self.limit, member]))
            if wait_ms == 0:
                self._local.record(bucket)
            return wait_ms / 1000.0

        return self.fallback.call(remote, lambda: self._local.take(bucket))

    def remaining(self, bucket: str) -> int:
        def remote() -> int:
            used = int(self._remaining_script(keys=self._keys(bucket)[:1], args=[int(self.window * 1000)]))
            return max(0, self.limit - used)

        return self.fallback.call(remote, lambda: self._local.remaining(bucket))

    def penalize(self, bucket: str, seconds: float) -> None:
        self._local.penalize(bucket, seconds)  # kept here too, for a fallback that comes later
        self.fallback.call(lambda: self._penalize_script(keys=self._keys(bucket)[1:],
                                                         args=[max(1, int(seconds * 1000))]), lambda: None)
        with self._cond:
            self._cond.notify_all()

    def suspend(self, bucket: str, seconds: float, kind: str) -> None:
        super().suspend(bucket, seconds, kind)  # this process holds off even while Redis cannot be reached
        self.fallback.call(lambda: self._redis.set(f"{self._prefix}{bucket}:paused", kind,
                                                   px=max(1, int(seconds * 1000))), lambda: None)

    def suspended(self, bucket: str) -> Suspended | None:
        local = super().suspended(bucket)

        def remote() -> Suspended | None:
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(f"{self._prefix}{bucket}:paused")
            pipe.pttl(f"{self._prefix}{bucket}:paused")
            kind, ttl_ms = pipe.execute()
            if kind is None or ttl_ms is None or ttl_ms <= 0:
                return local
            shared = Suspended(kind.decode() if isinstance(kind, bytes) else str(kind), ttl_ms / 1000.0)
            return shared if local is None or shared.seconds_left > local.seconds_left else local

        return self.fallback.call(remote, lambda: local)  # Redis faulty: what this process knows still holds


def from_settings() -> Limiter:
    """The limiter the settings ask for: Redis with `RATE_LIMIT_REDIS_URL`, else in memory."""
    limit, window = config.rate_limit_per_minute(), config.rate_limit_window_seconds()
    url = config.rate_limit_redis_url()
    if url:
        try:
            return RedisLimiter(url, limit, window)
        except Exception as exc:  # a wrong URL must not take every page down; this process still limits
            log.warning("RATE_LIMIT_REDIS_URL unusable (%s); keeping the budget in memory", type(exc).__name__)
    return MemoryLimiter(limit, window)
