"""The process-wide fair pool (services/workers.py): owners are served in turn, an owner's limit holds,
and nothing is kept for an owner whose work is done."""

from __future__ import annotations

import threading
import time

from services.workers import FairPool


def test_owners_are_served_in_turn_not_in_arrival_order():
    pool = FairPool(1, "test-fair")
    gate, order = threading.Event(), []
    pool.submit("blocker", gate.wait)  # holds the only worker while the queues fill
    time.sleep(0.05)
    for i in range(5):
        pool.submit("batch", lambda i=i: order.append(f"batch{i}"))
    pool.submit("single", lambda: order.append("single"))
    gate.set()
    deadline = time.monotonic() + 5
    while len(order) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert order.index("single") <= 1, order  # behind at most one of the batch's, not all five
    assert [o for o in order if o != "single"] == [f"batch{i}" for i in range(5)]  # each owner in order


def test_an_owners_limit_holds_and_leaves_room_for_others():
    pool = FairPool(4, "test-limit")
    lock, running, peak = threading.Lock(), {"batch": 0}, {"batch": 0}
    others = threading.Event()

    def job():
        with lock:
            running["batch"] += 1
            peak["batch"] = max(peak["batch"], running["batch"])
        time.sleep(0.1)
        with lock:
            running["batch"] -= 1

    for _ in range(8):
        pool.submit("batch", job, limit=2)
    started = time.monotonic()
    pool.submit("other", others.set)
    assert others.wait(1) and time.monotonic() - started < 0.09  # a free worker at once
    deadline = time.monotonic() + 5
    while pool.pending("batch") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert peak["batch"] == 2
    time.sleep(0.05)
    assert "batch" not in pool._limits and "other" not in pool._limits  # nothing kept for owners done
