"""The process-wide fair pool (services/workers.py): owners are served in turn, an owner's limit holds,
and nothing is kept for an owner whose work is done."""

from __future__ import annotations

import threading
import time

from services.workers import FairGate, FairPool


def test_owners_are_served_in_turn_not_in_arrival_order():
    pool = FairPool(1, "test-fair")
    gate, holding, order = threading.Event(), threading.Event(), []
    pool.submit("blocker", lambda: (holding.set(), gate.wait()))  # holds the only worker while the queues fill
    assert holding.wait(10)
    for i in range(5):
        pool.submit("batch", lambda i=i: order.append(f"batch{i}"))
    pool.submit("single", lambda: order.append("single"))
    gate.set()
    deadline = time.monotonic() + 30
    while len(order) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(order) == 6, order
    assert order.index("single") <= 1, order  # behind at most one of the batch's, not all five
    assert [o for o in order if o != "single"] == [f"batch{i}" for i in range(5)]  # each owner in order


def test_an_owners_limit_holds_and_leaves_room_for_others():
    pool = FairPool(4, "test-limit")
    lock, running, peak, finished = threading.Lock(), {"batch": 0}, {"batch": 0}, []
    others, release = threading.Event(), threading.Event()

    def job():
        with lock:
            running["batch"] += 1
            peak["batch"] = max(peak["batch"], running["batch"])
        release.wait(30)  # the batch's jobs hold their workers until the other owner has been served
        with lock:
            running["batch"] -= 1
            finished.append(1)

    for _ in range(8):
        pool.submit("batch", job, limit=2)
    pool.submit("other", others.set)
    # a free worker at once: served while both of the batch's running jobs still hold theirs
    assert others.wait(10) and not finished and running["batch"] <= 2
    release.set()
    deadline = time.monotonic() + 30
    while (pool.pending("batch") or pool.pending("other")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(finished) == 8 and peak["batch"] == 2
    # an owner's last job leaves pending() and the pool's limits in one step: nothing kept for owners done
    assert "batch" not in pool._limits and "other" not in pool._limits


def _wait_until(condition, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_the_gate_is_handed_on_in_the_order_it_was_asked_for():
    """Three threads line up behind the holder; each gets it in turn, and the holder that lets go cannot take
    it straight back ahead of them (a plain lock would let a batch's worker starve a person)."""
    gate, order, release = FairGate(), [], threading.Event()

    def holder():
        with gate:
            with gate:  # re-entrant: the engine holds it around a photo, the cut-out takes it again
                order.append("holder")
                release.wait(10)
        with gate:  # asks again at once, behind the three already waiting
            order.append("holder again")

    def waiter(name):
        with gate:
            order.append(name)

    first = threading.Thread(target=holder)
    first.start()
    assert _wait_until(lambda: order == ["holder"])
    threads = []
    for n in range(3):
        threads.append(threading.Thread(target=waiter, args=(f"waiter{n}",)))
        threads[-1].start()
        assert _wait_until(lambda n=n: gate.waiting() == n + 1)  # in line in this order
    release.set()
    for thread in [first, *threads]:
        thread.join(10)
    assert order == ["holder", "waiter0", "waiter1", "waiter2", "holder again"]
    assert gate.waiting() == 0
