"""What every figure shares: result lines, timing, the environment that points the app at the stand-in."""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

BENCH_KEY = "sk_bench_0123456789abcdef"
PROMPT = "on a marble kitchen counter, soft morning light"
# Settings that would change what the app does; the bench sets its own and removes the rest.
_APP_SETTINGS = ("NOVITA_API_KEY", "NOVITA_BASE_URL", "NOVITA_TIMEOUT", "NOVITA_PRICE_PER_IMAGE", "APP_PASSWORD",
                 "MAX_IMAGES_PER_SESSION", "RATE_LIMIT_REDIS_URL", "RATE_LIMIT_WINDOW_SECONDS",
                 "NOVITA_RATE_LIMIT_PER_MINUTE", "BATCH_CONCURRENCY", "HISTORY_TTL_HOURS", "HISTORY_STORE_DIR",
                 "HISTORY_STORE_URL", "HISTORY_STORE_MAX_MB", "NOVITA_MODEL")


@dataclass
class Line:
    """One printed figure: `name: value (budget op limit) PASS|MISS [detail]`, or a skip/error/report line."""

    name: str
    value: float | None = None
    op: str | None = None  # "<=" or ">="; None: report only
    limit: float | None = None
    unit: str = ""
    detail: str = ""
    status: str | None = None  # why there is no value, explained in `detail`: "skipped" (not measured here),
    # "failed" (the SDK could not do it), "broken" (the offline engine raised), "error" (the benchmark broke)
    digits: int = 2

    @property
    def verdict(self) -> str | None:
        if self.status or self.value is None or self.op is None:
            return None
        ok = self.value <= self.limit if self.op == "<=" else self.value >= self.limit
        return "PASS" if ok else "MISS"

    def __str__(self) -> str:
        if self.status:
            return f"{self.name}: {self.status} ({self.detail})"
        unit = f" {self.unit}" if self.unit else ""
        text = f"{self.name}: {self.value:.{self.digits}f}{unit}"
        if self.op is None:
            text += " (report only)"
        else:
            text += f" (budget {self.op} {self.limit:g}{unit}) {self.verdict}"
        return text + (f"  [{self.detail}]" if self.detail else "")


def paired_medians(a: Callable[[], object], b: Callable[[], object], repeats: int,
                   warmup: int = 1) -> tuple[float, float, float, float]:
    """Wall and CPU medians of `a` and `b`, run alternately so machine load hits both alike:
    (wall a, wall b, process-CPU a, process-CPU b). CPU time counts every thread of this process, the
    in-process stand-in's included, so its ratio is what the wall ratio would be on an idle machine."""
    walls, cpus = alternating_medians((a, b), repeats, warmup)
    return walls[0], walls[1], cpus[0], cpus[1]


def alternating_medians(fns: tuple[Callable[[], object], ...], repeats: int,
                        warmup: int = 1) -> tuple[list[float], list[float]]:
    """Wall and process-CPU medians of each of `fns`, run in turn `repeats` times after `warmup` rounds."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    walls: list[list[float]] = [[] for _ in fns]
    cpus: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for index, fn in enumerate(fns):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            cpus[index].append(time.process_time() - cpu)
            walls[index].append(time.perf_counter() - wall)
    med = statistics.median
    return [med(w) for w in walls], [med(c) for c in cpus]


@contextlib.contextmanager
def app_environment(base_url: str) -> Iterator[None]:
    """Point the app at the stand-in with a bench key, nothing else from the host, and its history store at a
    folder of its own (the store is on, as by default); restored afterwards."""
    saved = {name: os.environ.get(name) for name in _APP_SETTINGS}
    for name in _APP_SETTINGS:
        os.environ.pop(name, None)
    kept = tempfile.TemporaryDirectory(prefix="bench-history-")
    os.environ.update(NOVITA_API_KEY=BENCH_KEY, NOVITA_BASE_URL=base_url, NOVITA_RATE_LIMIT_PER_MINUTE="1000",
                      HISTORY_STORE_DIR=kept.name, NOVITA_MODEL="replace-background")
    try:
        yield
    finally:
        kept.cleanup()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def quiet_logs() -> None:
    """Warnings only: app.py's basicConfig(INFO) becomes a no-op, so no per-request log lines."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)
    os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")
    import streamlit.logger

    # AppTest runs without a server: its "missing ScriptRunContext" and deprecation notes are noise here
    streamlit.logger.set_log_level("error")


def load_average() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"
