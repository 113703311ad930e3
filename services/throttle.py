"""How fast the access gate may be asked: one schedule per client address and one for the whole process.

Every attempt takes a turn on its address's schedule and on the process-wide one before the password is
compared, so guesses from many fresh sessions are spaced out exactly like guesses from one session. Each
wrong answer doubles the gap before the next turn (up to `max_delay`); `lock_after` wrong answers from one
address lock that address for `window` seconds, and `ceiling` from everywhere lock the gate for everyone.
A turn further away than `max_delay` is not waited for: the attempt is refused unchecked. The log counts
failures and names the address; it never holds what was typed.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

LOCK_AFTER = 10  # wrong passwords from one address within the window before it is locked
CEILING_FACTOR = 3  # the whole process is locked after this many times LOCK_AFTER
WINDOW = 15 * 60.0  # seconds a failure is remembered, and how long a lock lasts
BASE_DELAY = 0.5  # seconds before the turn after a first wrong answer; doubles with each one
MAX_DELAY = 8.0  # longest wait a turn may ask for; beyond it the attempt is refused unchecked
UNKNOWN = "an unknown address"  # what the log says when the server cannot tell the address


def client_key(address: object) -> str:
    """The address an attempt is counted under: IPv4 as is, IPv6 by its /64 (one home's or phone's
    range), anything that is not an address as UNKNOWN."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else None
    except ValueError:
        ip = None
    if ip is None:
        return UNKNOWN
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True)
class Turn:
    """The answer to `admit`: wait `wait` seconds then check, or, with `retry_after` set, do not check."""

    address: str
    wait: float = 0.0
    retry_after: float | None = None

    @property
    def refused(self) -> bool:
        """True when the password must not be compared at all this time."""
        return self.retry_after is not None


class GateThrottle:
    """Thread-safe pacing and lockout of password attempts, shared by every session of the process."""

    def __init__(self, *, lock_after: int = LOCK_AFTER, ceiling: int | None = None, window: float = WINDOW,
                 base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lock_after = max(1, lock_after)
        self.ceiling = ceiling if ceiling is not None else self.lock_after * CEILING_FACTOR
        self.window, self.base_delay, self.max_delay, self._clock = window, base_delay, max_delay, clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._everyone: deque[float] = deque()
        self._pending: dict[str, int] = defaultdict(int)
        self._pending_everyone = 0
        self._next: dict[str, float] = {}
        self._next_everyone = 0.0
        self._locked_until: dict[str, float] = {}
        self._everyone_locked_until = 0.0

    def delay(self, failures: int) -> float:
        """Seconds between the turn after `failures` wrong answers and the one before it."""
        return 0.0 if failures <= 0 else min(self.max_delay, self.base_delay * 2 ** (failures - 1))

    def admit(self, address: object) -> Turn:
        """Take the next turn for the client `address` (None when the server cannot tell); call `record`
        after it."""
        address = client_key(address)
        with self._lock:
            now = self._clock()
            self._forget(now)
            locked_until = max(self._locked_until.get(address, 0.0), self._everyone_locked_until)
            if locked_until > now:
                return Turn(address, retry_after=locked_until - now)
            failures = len(self._failures[address]) + self._pending[address]
            everyone = len(self._everyone) + self._pending_everyone
            turn_at = max(now, self._next.get(address, 0.0), self._next_everyone)
            # Attempts still being checked may lock the gate: no turn is handed out beyond the lock.
            if failures >= self.lock_after or everyone >= self.ceiling or turn_at - now > self.max_delay:
                return Turn(address, retry_after=max(1.0, turn_at - now))
            self._pending[address] += 1
            self._pending_everyone += 1
            self._next[address] = turn_at + self.delay(failures + 1)
            self._next_everyone = turn_at + self.delay((everyone + 1) // CEILING_FACTOR)
            return Turn(address, wait=turn_at - now)

    def record(self, turn: Turn, *, right: bool) -> None:
        """Close an admitted turn with the outcome of the comparison."""
        if turn.refused:
            return
        with self._lock:
            now = self._clock()
            self._pending[turn.address] -= 1
            self._pending_everyone -= 1
            if right:
                return
            mine = self._failures[turn.address]
            mine.append(now)
            self._everyone.append(now)
            self._forget(now)
            # The next turn is counted from when this answer was known, not only from when it was asked.
            self._next[turn.address] = max(self._next.get(turn.address, 0.0), now + self.delay(len(mine)))
            minutes = round(self.window / 60)
            log.warning("access gate: wrong password; %d from %s and %d from everywhere in the last %d min",
                        len(mine), turn.address, len(self._everyone), minutes)
            if len(mine) >= self.lock_after:
                self._locked_until[turn.address] = now + self.window
                log.warning("access gate: %s locked for %d min after %d wrong passwords",
                            turn.address, minutes, len(mine))
            if len(self._everyone) >= self.ceiling:
                self._everyone_locked_until = now + self.window
                log.warning("access gate: locked for everyone for %d min after %d wrong passwords",
                            minutes, len(self._everyone))

    def _forget(self, now: float) -> None:
        """Drop failures older than the window, and addresses with nothing left to remember."""
        horizon = now - self.window
        while self._everyone and self._everyone[0] <= horizon:
            self._everyone.popleft()
        for address in list(self._failures):
            stamps = self._failures[address]
            while stamps and stamps[0] <= horizon:
                stamps.popleft()
            if not stamps and not self._pending[address] and self._locked_until.get(address, 0.0) <= now:
                del self._failures[address]
                self._pending.pop(address, None)
                self._next.pop(address, None)
                self._locked_until.pop(address, None)
