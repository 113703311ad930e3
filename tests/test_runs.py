"""The run engine (services/runs.py) on the process's pools, against the loopback stand-in: concurrency,
failures and retries, cancel, what a failed task keeps, fairness between sessions, and the owner's budget
(session cap counting what is in flight, the daily ceiling, a 429 storm through the limiter)."""

from __future__ import annotations

import threading
import time

import pytest

from components.messages import describe
from services import budget, engines, masks, offline, runs, workers
from services.budget import Account, BudgetExceeded, Ledger
from services.images import sniff_format
from services.quota import MemoryLimiter
from tests.conftest import TEST_KEY, photo_bytes
from tests.novita_stub import Fault

TIMEOUT = 30
LATENCY = 0.5


def photos(n: int, prefix: str = "photo", size=(320, 240)) -> list[tuple[str, bytes]]:
    """n small distinct JPEGs named photo01.jpg, photo02.jpg, …"""
    return [(f"{prefix}{i + 1:02d}.jpg", photo_bytes(size=size, colour=(20 * i % 256, 90, 200 - 10 * i)))
            for i in range(n)]


def new_run(named, prompt="on a marble counter", image_type="png", engine=engines.NOVITA, *, owner=None,
            owner_key=False) -> runs.Run:
    tasks = [runs.Task(name, prompt, data=data) for name, data in named]
    return runs.Run(tasks, image_type, engine, owner_key=owner_key, owner=owner)


def spending(limiter=None, concurrency=4, *, ledger=None, account=None) -> runs.Spending:
    ledger = ledger or Ledger(limiter or MemoryLimiter(1000), daily_limit=10_000)
    return runs.Spending(TEST_KEY, ledger, account, 0.01, concurrency)


def wait_finished(run: runs.Run, timeout: float = TIMEOUT) -> float:
    """Poll until no task waits or runs; return the seconds it took."""
    began = time.monotonic()
    while not run.finished:
        if time.monotonic() - began > timeout:
            pytest.fail(f"the run did not finish in {timeout} s: {run.counts()}")
        time.sleep(0.01)
    return time.monotonic() - began


def wait_for_requests(stub, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(stub.requests) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"the stand-in received {len(stub.requests)} of {count} requests in {timeout} s")
        time.sleep(0.01)


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of [start, end) intervals covering one instant."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def sentence(error: BaseException | None, owner_key: bool = False) -> str:
    """What the page shows for a failure."""
    return describe(error, owner_key=owner_key)[0]


def is_sentence(text: str | None) -> bool:
    return bool(text) and len(text) > 15 and text.rstrip()[-1] in ".!?" and "Traceback" not in text


HOLD = 20.0  # seconds a held reply waits at most: only a failing run reaches it (Novita's read timeout is 120 s)


@pytest.fixture
def in_flight(stub, monkeypatch):
    """How many requests the stand-in holds in its latency sleep at once; "peak" is the most seen. Set
    "until" to N and each reply also waits until N were held at once; set "gate" to an Event and each reply
    waits for it (either at most HOLD s), so what a test looks at cannot pass by on a slow machine."""
    seen = {"now": 0, "peak": 0, "until": 0, "gate": None}
    cond = threading.Condition()
    sleep = stub._sleep

    def counting_sleep(seconds):
        with cond:
            seen["now"] += 1
            seen["peak"] = max(seen["peak"], seen["now"])
            cond.notify_all()
            cond.wait_for(lambda: seen["peak"] >= seen["until"], timeout=HOLD)
        if seen["gate"] is not None:
            seen["gate"].wait(HOLD)
        try:
            sleep(seconds)
        finally:
            with cond:
                seen["now"] -= 1

    monkeypatch.setattr(stub, "_sleep", counting_sleep)
    return seen


# --- concurrency, failures, retries -------------------------------------------------------------------


def test_twelve_photos_at_concurrency_four_take_about_three_latencies(novita_env, in_flight):
    stub = novita_env
    stub.latency = LATENCY
    in_flight["until"] = 4  # the first four replies wait until all four are out: the peak cannot be missed
    named = photos(12)
    run = new_run(named, "on a sunny beach at sunset", "webp")
    run.start(spending(concurrency=4))
    wall = wait_finished(run)
    derived = max_overlap([(r.received_at, r.received_at + LATENCY) for r in stub.requests])
    print(f"\n12 photos, concurrency 4, stand-in latency {LATENCY:.2f} s: {wall:.2f} s wall "
          f"= {wall / LATENCY:.2f} latencies (serial would be 12); peak in flight {in_flight['peak']}")
    # at least three rounds of the stand-in's latency (a lower bound); far below the twelve a serial run takes
    assert 2.5 * LATENCY < wall, f"{wall:.2f} s for 12 photos at concurrency 4"
    assert derived >= 4 and wall < 10 * LATENCY, f"{wall:.2f} s for 12 photos at concurrency 4"
    assert in_flight["peak"] == 4 and derived <= 4
    assert run.counts() == {"waiting": 0, "running": 0, "done": 12, "failed": 0}
    for task in run.tasks:
        item = task.item
        assert (item.prompt, item.image_type, item.engine) == ("on a sunny beach at sunset", "webp", "novita")
        assert sniff_format(item.result) == "webp"
        assert item.download_name == f"{task.source_name[:-4]}-on-a-sunny-beach-at-sunset.webp"
    assert len(stub.requests) == 12
    assert all(r.headers["Authorization"] == f"Bearer {TEST_KEY}" for r in stub.requests)
    assert len({r.json["image_file"] for r in stub.requests}) == 12  # every photo sent once


def test_twelve_people_pressing_at_once_are_all_sent_at_once(novita_env, in_flight, monkeypatch):
    """The process's send threads are many by default: a single photo from each of 12 sessions goes out at
    once instead of the 9th waiting a whole reply for a thread (the rate limit bounds the spend, not this)."""
    monkeypatch.delenv("SEND_WORKERS", raising=False)
    stub = novita_env
    stub.latency = 0.2
    in_flight["until"] = 12  # each reply waits until twelve are out at once (or HOLD s, when they never are)
    people = [new_run(photos(1, prefix=f"person{i}-"), owner=f"session-{i}") for i in range(12)]
    for run in people:
        run.start(spending())
    for run in people:
        wait_finished(run)
    assert [run.counts()["done"] for run in people] == [1] * 12
    assert in_flight["peak"] == 12, f"only {in_flight['peak']} of 12 people's photos were with Novita at once"


def test_photos_are_prepared_ahead_and_only_sent_photos_show_as_running(novita_env, in_flight):
    novita_env.latency = 0.4
    in_flight["gate"] = held = threading.Event()  # the first reply waits until the run has been looked at
    run = new_run(photos(3))
    run.start(spending(concurrency=1))
    wait_for_requests(novita_env, 1)
    deadline = time.monotonic() + 10
    while not all(task.prepared is not None for task in run.tasks) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run.counts() == {"waiting": 2, "running": 1, "done": 0, "failed": 0}
    assert all(task.prepared is not None and task.data is None for task in run.tasks)
    in_flight["gate"] = None
    held.set()
    wait_finished(run)
    assert run.counts()[runs.DONE] == 3
    # each says how long it took once sent, not how long it waited for the photos before it: a photo was
    # sent only once the one before it had its reply, `latency` after that one reached the stand-in
    arrivals = sorted(r.received_at for r in novita_env.requests)
    in_sending_order = sorted(run.tasks, key=lambda task: task.started)
    for before, task in zip(arrivals, in_sending_order[1:]):
        assert task.item.seconds <= task.finished - (before + novita_env.latency), task.item.seconds


def test_a_slot_is_handed_on_before_the_previews_are_made(novita_env, monkeypatch):
    from services import previews

    made, seen = previews.previews, []

    def slow_previews(image):
        # the first photo's previews wait for the second photo to reach the stand-in (which it can only do
        # if the send slot was handed on before them); at most HOLD s, when it never comes
        deadline = time.monotonic() + HOLD
        while len(novita_env.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(len(novita_env.requests))
        return made(image)

    monkeypatch.setattr(previews, "previews", slow_previews)
    run = new_run(photos(2))
    run.start(spending(concurrency=1))
    wait_finished(run, timeout=TIMEOUT + HOLD)
    assert run.counts()[runs.DONE] == 2
    assert seen and seen[0] == 2, "the second photo waited for the first one's previews"


def test_one_failure_leaves_eleven_results_and_retry_runs_only_that_one(novita_env):
    stub = novita_env
    stub.script("500")
    run = new_run(photos(12), image_type="jpeg")
    run.start(spending())
    wait_finished(run)
    assert run.counts()["done"] == 11 and run.counts()["failed"] == 1
    (failed,) = [t for t in run.tasks if t.status == runs.FAILED]
    assert failed.item is None and failed.retryable and is_sentence(sentence(failed.error))
    assert len(run.collect()) == 11

    assert run.retry_failed(spending()) == 1
    assert run.retry_failed(spending()) == 0  # the double click
    wait_finished(run)
    assert len(stub.requests) == 13
    assert stub.requests[12].json["image_file"] == stub.requests[0].json["image_file"]
    assert run.counts()["done"] == 12 and failed.error is None
    assert [t.source_name for t in run.collect()] == [failed.source_name]
    assert run.collect() == []


def test_a_failure_never_stops_the_others_and_keeps_nothing_a_retry_cannot_use(novita_env):
    stub = novita_env
    stub.script("400")  # Novita refuses the first request it gets
    named = photos(6)
    named.insert(2, ("notes.jpg", b"this is a text file, not a picture"))
    run = new_run(named)
    run.start(spending(concurrency=2))
    wait_finished(run)
    by_name = {t.source_name: t for t in run.tasks}
    unreadable = by_name.pop("notes.jpg")
    assert unreadable.status == runs.FAILED and not unreadable.retryable
    assert is_sentence(sentence(unreadable.error))
    (refused,) = [t for t in by_name.values() if t.status == runs.FAILED]
    assert refused.error.reason == "INVALID_REQUEST_BODY" and not refused.retryable
    assert run.counts()["done"] == 5 and len(stub.requests) == 6  # the unreadable file is never sent
    for task in (unreadable, refused):  # a retry cannot help: no photo bytes are kept
        assert task.data is None and task.prepared is None and task.reply is None


def test_a_retryable_failure_keeps_only_its_prepared_photo(novita_env):
    novita_env.always("500")
    run = new_run(photos(1, size=(3000, 2000)))
    run.start(spending())
    wait_finished(run)
    (task,) = run.tasks
    assert task.retryable and task.data is None and task.reply is None
    assert max(task.prepared.size) <= 2048  # the box-fitted photo, not the upload


def test_a_result_whose_previews_failed_is_not_paid_for_twice(novita_env, monkeypatch):
    from services import previews

    made, calls = previews.previews, []

    def previews_once_broken(image):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("no room for the previews")
        return made(image)

    monkeypatch.setattr(previews, "previews", previews_once_broken)
    run = new_run(photos(1))
    run.start(spending())
    wait_finished(run)
    (task,) = run.tasks
    assert task.retryable and is_sentence(sentence(task.error))
    assert run.retry_failed(spending()) == 1
    wait_finished(run)
    assert task.status == runs.DONE and len(novita_env.requests) == 1, "the retry sent the photo again"
    assert task.prepared is None and task.data is None and task.reply is None  # no second copy once done


# --- cancel -----------------------------------------------------------------------------------------------


def test_cancel_does_not_wait_for_the_photos_already_sent(novita_env, in_flight):
    in_flight["gate"] = held = threading.Event()  # the photo sent stays out until the cancel is looked at
    run = new_run(photos(3))
    run.start(spending(concurrency=1))
    wait_for_requests(novita_env, 1)
    run.cancel_rest()
    assert run.counts() == {"waiting": 0, "running": 1, "done": 0, "failed": 2}
    held.set()
    wait_finished(run)
    assert run.counts()[runs.DONE] == 1 and len(novita_env.requests) == 1


def test_cancel_stops_what_waits_in_line_and_retry_runs_it_later(novita_env):
    run = new_run(photos(4))
    run.start(spending(MemoryLimiter(1, 60.0), concurrency=2))  # one slot a minute: the rest wait in line
    deadline = time.monotonic() + 10
    while sum(task.waiting is not None for task in run.tasks) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    places = sorted(task.waiting for task in run.tasks if task.waiting is not None)
    assert 1 <= len(places) <= 2  # at most two of this session's sends at once
    assert places[0][0] == 1 and 30 < places[0][1] <= 60  # the head waits for the minute's slot to free
    run.cancel_rest()
    wait_finished(run, timeout=20)  # they leave the line at once, not when the minute's slot frees (60 s)
    assert run.counts()[runs.DONE] == 1 and run.counts()[runs.FAILED] == 3
    assert len(novita_env.requests) == 1
    cancelled = [task for task in run.tasks if task.status == runs.FAILED]
    assert all(task.retryable and "nothing was" in sentence(task.error) for task in cancelled)
    assert run.retry_failed(spending(MemoryLimiter(100, 60.0))) == 3
    wait_finished(run)
    assert run.counts()[runs.DONE] == 4 and len(novita_env.requests) == 4


def test_a_task_cancelled_before_its_send_is_never_sent(novita_env):
    """The worker's send step after Cancel (the race a real run hits now and then, made certain)."""
    run = new_run(photos(1))
    (task,) = run.tasks
    run.cancel_rest()
    run._begin(task, 0, spending())
    run._send(task, 0, spending())
    assert task.status == runs.FAILED and task.retryable
    assert task.prepared is None and task.data is not None  # never prepared: kept, so a retry can
    assert novita_env.requests == []


# --- the owner's budget -----------------------------------------------------------------------------------


def test_cap_two_holds_with_variants_batch_and_the_main_page_at_once(novita_env):
    """One session, three runs started together on the owner's key with MAX_IMAGES_PER_SESSION=2: each
    fits the cap alone, but reservations in flight count, so only two images are made."""
    novita_env.latency = 0.3
    account = Account(cap=2)
    ledger = Ledger(MemoryLimiter(1000), daily_limit=1000)
    photo = photo_bytes()
    from services import images

    prepared = images.prepare(photo, "mug.jpg")
    variants = runs.Run([runs.Task("mug.jpg", p, prepared=prepared) for p in ("a", "b")], "png", engines.NOVITA,
                        owner_key=True, owner="me")
    batch = new_run(photos(2), owner="me", owner_key=True)
    main = runs.Run([runs.Task("mug.jpg", "c", prepared=prepared)], "png", engines.NOVITA, owner_key=True, owner="me")
    for run in (variants, batch, main):
        ledger.check(account, len(run.tasks), owner_key=True)  # what the page checks first: each fits alone
        run.start(spending(ledger=ledger, account=account))
    for run in (variants, batch, main):
        wait_finished(run)
    done = sum(run.counts()[runs.DONE] for run in (variants, batch, main))
    refused = [t.error for run in (variants, batch, main) for t in run.tasks if t.status == runs.FAILED]
    assert len(novita_env.requests) == 2 and done == 2
    assert len(refused) == 3 and all(isinstance(e, BudgetExceeded) and e.kind == budget.SESSION for e in refused)
    assert (account.owner_spent, account.owner_held, account.images) == (2, 0, 2)
    assert account.spend == pytest.approx(0.02)
    assert "per session" in sentence(refused[0], owner_key=True)


def test_the_daily_ceiling_holds_across_sessions_and_says_whose_limit_it_is(novita_env):
    ledger = Ledger(MemoryLimiter(1000), daily_limit=2)
    sessions = [Account(cap=25) for _ in range(3)]
    for account in sessions:
        run = new_run(photos(1), owner=account, owner_key=True)
        try:
            ledger.check(account, 1, owner_key=True)
        except BudgetExceeded as exc:
            refusal = exc
            continue
        run.start(spending(ledger=ledger, account=account))
        wait_finished(run)
    assert len(novita_env.requests) == 2
    assert ledger.today().used == 2 and ledger.today().left == 0
    text = sentence(refusal, owner_key=True)
    assert refusal.kind == budget.DAY and "2 Novita images a day" in text and "owner" in text
    assert "00:00 UTC" in text
    # a reservation that raced past the page's check is refused by the ledger itself
    with pytest.raises(BudgetExceeded):
        ledger.reserve(sessions[2], owner_key=True, cost=0.01)
    # own keys are not the owner's money: the ceiling does not apply to them
    ledger.check(sessions[2], 5, owner_key=False)


def test_a_reservation_is_released_when_novita_certainly_made_nothing(novita_env):
    ledger = Ledger(MemoryLimiter(1000), daily_limit=10)
    account = Account(cap=10)
    novita_env.script("400", Fault("timeout", delay=1.5))
    run = new_run(photos(1), owner_key=True)
    run.start(spending(ledger=ledger, account=account))
    wait_finished(run)
    assert (account.owner_spent, account.owner_held, ledger.today().used) == (0, 0, 0)  # a 400: released
    import os

    os.environ["NOVITA_TIMEOUT"] = "0.5"
    try:
        run = new_run(photos(1), owner_key=True)
        run.start(spending(ledger=ledger, account=account))
        wait_finished(run)
    finally:
        del os.environ["NOVITA_TIMEOUT"]
    assert (account.owner_spent, account.owner_held, ledger.today().used) == (1, 0, 1)  # may have made it


def test_a_429_storm_sends_exactly_what_the_limiter_granted(novita_env):
    """Novita answers 429 again and again: no retry below the limiter, each photo goes back in line, and
    the stand-in receives exactly as many requests as the limiter granted."""
    novita_env.script(*[Fault("429", retry_after=1)] * 3)  # each photo's first request is refused
    limiter = MemoryLimiter(1000)
    grants = []
    take = limiter._take
    limiter._take = lambda bucket: (grants.append(1) if (wait := take(bucket)) == 0 else None, wait)[1]
    run = new_run(photos(3))
    run.start(spending(limiter, concurrency=3))
    wait_finished(run)
    assert len(novita_env.requests) == len(grants)  # below the limiter, urllib3 re-sent nothing
    assert len(grants) >= 5  # three refused, and the refused went back in line
    assert run.counts()[runs.DONE] >= 2  # (one may meet the last refusal on its second try)
    arrivals = sorted(r.received_at for r in novita_env.requests)
    assert arrivals[-1] - arrivals[0] >= 0.9  # the retries waited out the key's penalty (Retry-After: 1)


# --- fairness between sessions ----------------------------------------------------------------------------


def _single_offline(owner) -> float:
    masks.clear()  # the photo's subject is cut anew each time: the model's work is what is compared
    run = new_run(photos(1, "single", size=(480, 360)), engine=engines.OFFLINE, owner=owner)
    began = time.monotonic()
    run.start(spending())
    wait_finished(run, timeout=120)
    assert run.counts()[runs.DONE] == 1
    return time.monotonic() - began


def test_a_single_photo_is_not_queued_behind_another_sessions_batch(stub):
    """A 20-photo offline batch in one session; a single photo in another finishes in about the time it
    takes alone, not after the batch (behind it, it would wait for most of 20 photos' work)."""
    alone = min(_single_offline("alone"), _single_offline("alone"))
    batch = new_run(photos(20, size=(480, 360)), engine=engines.OFFLINE, owner="batch")
    batch_began = time.monotonic()
    batch.start(spending())
    deadline = time.monotonic() + 120
    while not batch.counts()[runs.DONE] and time.monotonic() < deadline:  # the batch is under way
        time.sleep(0.01)
    assert batch.counts()[runs.DONE], "the batch never got going"
    shared = _single_offline("single")
    done_meanwhile = batch.counts()[runs.DONE]
    wait_finished(batch, timeout=300)
    batch_wall = time.monotonic() - batch_began
    print(f"\nsingle offline photo alone {alone:.2f} s; beside a 20-photo batch {shared:.2f} s "
          f"({shared / alone:.1f}×); the batch took {batch_wall:.1f} s, {done_meanwhile} done when it finished")
    # about 2× on an idle 2-CPU machine; very loose, as other work on the machine swings the ratio. What
    # holds under any load is the count below: the batch and the single share the same CPUs meanwhile.
    assert shared < 10 * alone, f"{shared:.2f} s beside the batch vs {alone:.2f} s alone"
    assert done_meanwhile < 10  # behind the batch it would have finished after all 20


def test_each_finished_result_is_kept_in_the_worker_before_the_page_collects_it(novita_env, tmp_path):
    from services.history import History
    from services.store import LocalStore, owner_of

    kept, owner = LocalStore(tmp_path, ttl_seconds=3600, max_total_bytes=10**9), owner_of("a-browser-key")
    history = History()
    history.attach(kept, owner)
    tasks = [runs.Task(name, "in a warehouse", data=data) for name, data in photos(3)]
    run = runs.Run(tasks, "png", engines.NOVITA, keep=history.writer())
    run.start(spending())
    wait_finished(run)
    done = [task.item.id for task in run.tasks]
    assert sorted(e.id for e in kept.entries(owner)) == sorted(done)  # though nothing was collected
    assert len(history) == 0
    for task in run.collect():
        history.add(task.item)
    assert len(list(tmp_path.rglob("*.zip"))) == 3  # collecting writes nothing twice


def _held_backdrop(monkeypatch):
    """Hold every offline photo in its backdrop until released; `inside` is set when the first gets there."""
    release, inside = threading.Event(), threading.Event()
    backdrop = offline.on_backdrop

    def held(*args, **kwargs):
        inside.set()
        assert release.wait(30), "never released"
        return backdrop(*args, **kwargs)

    monkeypatch.setattr(offline, "on_backdrop", held)
    monkeypatch.setattr(workers, "_pools", {})  # pools of their own, sized for two CPUs: three CPU threads
    monkeypatch.setattr(workers, "cpu_count", lambda: 2)
    return release, inside


def test_photos_waiting_their_turn_hold_no_cpu_thread(novita_env, monkeypatch):
    """Offline photos are made one at a time (memory); the ones waiting for their turn wait on the photo pool,
    not on a CPU thread, so with three sessions' photos held up another session's Novita photo is still
    prepared and sent."""
    release, inside = _held_backdrop(monkeypatch)
    try:
        held_up = [new_run(photos(1, f"held{n}"), engine=engines.OFFLINE, owner=f"held{n}") for n in range(3)]
        for run in held_up:
            run.start(spending())
        assert inside.wait(30), "no photo reached the backdrop"
        assert [task.stage.kind for run in held_up[1:] for task in run.tasks] == ["waiting_turn"] * 2
        newcomer = new_run(photos(1, "newcomer"), owner="newcomer")
        newcomer.start(spending())
        wait_finished(newcomer)
        assert newcomer.counts()[runs.DONE] == 1
        assert sum(run.counts()[runs.RUNNING] for run in held_up) == 1  # the others still wait their turn
    finally:
        release.set()
    for run in held_up:
        wait_finished(run, timeout=120)
        assert run.counts()[runs.DONE] == 1


def test_a_batch_made_here_is_prepared_on_its_turn_not_ahead(monkeypatch):
    """While a batch's first photo is being made, the others are not prepared ahead: their prepared copies
    would wait in memory for a turn that comes one photo at a time."""
    release, inside = _held_backdrop(monkeypatch)
    try:
        batch = new_run(photos(5, "ahead"), engine=engines.OFFLINE, owner="batch")
        batch.start(spending())
        assert inside.wait(30), "no photo reached the backdrop"
        deadline = time.monotonic() + 10
        while workers.cpu().pending("batch") and time.monotonic() < deadline:  # no work left for the CPU pool
            time.sleep(0.01)
        assert workers.cpu().pending("batch") == 0
        assert sum(task.prepared is not None for task in batch.tasks) == 1
    finally:
        release.set()
    wait_finished(batch, timeout=120)
    assert batch.counts()[runs.DONE] == 5
