"""The owner's budget ledger: every image sent on the owner's key is reserved before it is sent.

A reservation is checked against the session's cap (images spent plus reservations in flight) and the
owner-wide daily ceiling (`MAX_IMAGES_PER_DAY`, per UTC calendar day, shared by every session and, with
Redis, every replica); the per-minute rate is the limiter's line, which the send joins after reserving.
A reservation becomes spent when Novita answered or may have processed the call, and is released when it
certainly did not. The spend and "images left" figures come from here only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from services import config, quota

SESSION, DAY = "session", "day"  # which limit refused a reservation


def utc_now() -> datetime:
    """The current time in UTC: the daily ceiling counts UTC calendar days."""
    return datetime.now(timezone.utc)


class BudgetExceeded(Exception):
    """Nothing was sent: the session's cap or the owner's daily ceiling leaves too few images."""

    def __init__(self, kind: str, limit: int, left: int, needed: int = 1, resets_at: datetime | None = None):
        super().__init__(f"{kind} limit of {limit} images: {left} left, {needed} needed")
        self.kind, self.limit, self.left, self.needed, self.resets_at = kind, limit, left, needed, resets_at


@dataclass(eq=False)
class Account:
    """One browser session's spending, kept in its own session state; its runs' threads update it."""

    cap: int  # images this session may make on the owner's key
    images: int = 0  # Novita images spent on any key: the session's spend figures
    spend: float = 0.0  # estimated dollars of those
    owner_spent: int = 0  # of those, on the owner's key
    owner_held: int = 0  # reservations on the owner's key not yet spent or released
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def owner_left(self) -> int:
        """Images this session may still reserve on the owner's key."""
        with self._lock:
            return max(0, self.cap - self.owner_spent - self.owner_held)


@dataclass(frozen=True)
class Today:
    """The owner-wide daily ceiling as it stands."""

    used: int
    limit: int
    resets_at: datetime

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


LOCAL, REMOTE = "local", "remote"  # where a day's reservation was counted: this process, or the shared Redis


class DayCount:
    """Images reserved or spent on the owner's key per UTC day, in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[str, int] = {}

    def reserve(self, day: str, limit: int) -> str | None:
        """Count one more image for `day` unless that would pass `limit`; where it was counted ("local"),
        or None when refused."""
        with self._lock:
            self._used = {day: self._used.get(day, 0)}  # only today matters; older days are dropped
            if self._used[day] >= limit:
                return None
            self._used[day] += 1
            return LOCAL

    def release(self, day: str, where: str = "local") -> None:
        """Take back one image of `day` that was never made, from the count that holds it."""
        with self._lock:
            if self._used.get(day, 0) > 0:
                self._used[day] -= 1

    def used(self, day: str) -> int:
        """Images counted for `day`."""
        with self._lock:
            return self._used.get(day, 0)

    def know(self, day: str, used: int) -> None:
        """Take in the count another store reported, so a fallback keeps the ceiling it knew."""
        with self._lock:
            self._used = {day: max(used, self._used.get(day, 0))}


_RESERVE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return -1 - used end
used = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 172800)
return used
"""
_RELEASE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


class RedisDayCount(DayCount):
    """The daily count in Redis, shared by every replica; this process's memory takes over on a fault."""

    def __init__(self, client, prefix: str = "rbg:budget:", fallback: quota.RedisFallback | None = None) -> None:
        super().__init__()
        self._redis, self._prefix = client, prefix
        self._reserve = client.register_script(_RESERVE)
        self._release = client.register_script(_RELEASE)
        # shared with the rate limit's when both use one Redis: a fault found by one spares the other its timeout
        self.fallback = fallback or quota.RedisFallback("daily ceiling")

    def _key(self, day: str) -> str:
        return f"{self._prefix}day:{day}"

    def reserve(self, day: str, limit: int) -> str | None:
        def remote() -> str | None:
            answer = int(self._reserve(keys=[self._key(day)], args=[limit]))
            used = answer if answer >= 0 else -1 - answer
            super(RedisDayCount, self).know(day, used)
            return REMOTE if answer >= 0 else None

        return self.fallback.call(remote, lambda: super(RedisDayCount, self).reserve(day, limit))

    def release(self, day: str, where: str = LOCAL) -> None:
        super().release(day)
        if where == REMOTE:  # one counted in memory while Redis was down is not in Redis's count to give back
            self.fallback.call(lambda: self._release(keys=[self._key(day)]), lambda: None)

    def used(self, day: str) -> int:
        def remote() -> int:
            used = int(self._redis.get(self._key(day)) or 0)
            super(RedisDayCount, self).know(day, used)
            return used

        return int(self.fallback.call(remote, lambda: super(RedisDayCount, self).used(day)))


class Reservation:
    """One image held against the budget until it is spent or released (each happens at most once)."""

    def __init__(self, ledger: Ledger, account: Account | None, owner_key: bool, day: str | None, cost: float,
                 where: str = LOCAL):
        self._ledger, self._account, self._owner_key, self._day, self._cost = ledger, account, owner_key, day, cost
        self._where = where
        self._lock = threading.Lock()
        self.state = "held"

    def _close(self, state: str) -> bool:
        with self._lock:
            if self.state != "held":
                return False
            self.state = state
            return True

    def spend(self) -> None:
        """Novita made the image, or may have: it counts for good."""
        if not self._close("spent") or self._account is None:
            return
        with self._account._lock:
            self._account.images += 1
            self._account.spend += self._cost
            if self._owner_key:
                self._account.owner_held -= 1
                self._account.owner_spent += 1

    def release(self) -> None:
        """Novita certainly made nothing: the image is free again."""
        if not self._close("released"):
            return
        if self._owner_key and self._account is not None:
            with self._account._lock:
                self._account.owner_held -= 1
        if self._day is not None:
            self._ledger.days.release(self._day, self._where)


class Ledger:
    """Reservations against the session cap and the owner's daily ceiling, beside the key's rate limiter."""

    def __init__(self, limiter: quota.Limiter, *, daily_limit: int, days: DayCount | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.limiter, self.daily_limit = limiter, max(0, int(daily_limit))
        self.days = days or DayCount()
        self._clock = clock

    def today(self) -> Today:
        """Images used today on the owner's key (every session), the ceiling, and when the count resets."""
        now = self._clock()
        tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
        return Today(self.days.used(now.date().isoformat()), self.daily_limit, tomorrow)

    def check(self, account: Account, needed: int, *, owner_key: bool) -> None:
        """Raise BudgetExceeded unless `needed` more images fit today's ceiling and the session's cap; a whole
        run is refused before it sends anything (each send still reserves, as other runs may get there first)."""
        if not owner_key:
            return
        if account.owner_left < needed:
            raise BudgetExceeded(SESSION, account.cap, account.owner_left, needed)
        today = self.today()
        if today.left < needed:
            raise BudgetExceeded(DAY, today.limit, today.left, needed, today.resets_at)

    def reserve(self, account: Account | None, *, owner_key: bool, cost: float) -> Reservation:
        """Hold one image before a send: on the owner's key against the session's cap (counting what is in
        flight) and the daily ceiling; raises BudgetExceeded when either is reached, holding nothing."""
        if not owner_key:
            return Reservation(self, account, False, None, cost)
        if account is not None:
            with account._lock:
                if account.owner_spent + account.owner_held >= account.cap:
                    raise BudgetExceeded(SESSION, account.cap, 0)
                account.owner_held += 1
        now = self._clock()
        day = now.date().isoformat()
        where = self.days.reserve(day, self.daily_limit)
        if where is None:
            if account is not None:
                with account._lock:
                    account.owner_held -= 1
            raise BudgetExceeded(DAY, self.daily_limit, 0, resets_at=self.today().resets_at)
        return Reservation(self, account, True, day, cost, where)


def from_settings() -> Ledger:
    """The ledger the settings ask for: with `RATE_LIMIT_REDIS_URL`, the daily count and the rate window
    live in Redis (shared by replicas), with this process's memory as the fallback."""
    limiter = quota.from_settings()
    days: DayCount = DayCount()
    if isinstance(limiter, quota.RedisLimiter):
        days = RedisDayCount(limiter.client, fallback=limiter.fallback)
    return Ledger(limiter, daily_limit=config.max_images_per_day(), days=days)
