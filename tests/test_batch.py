"""Batch and Variants: the bounded worker pool against the loopback stand-in, uploads (photos and ZIPs),
the results ZIP with its manifest, and the two pages through AppTest."""

from __future__ import annotations

import csv
import io
import threading
import time
import zipfile

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from components.messages import describe
from services import batch as batches
from services import export
from services.history import History, HistoryItem
from services.images import sniff_format
from services.quota import MemoryLimiter
from tests.conftest import TEST_KEY, photo_bytes

TIMEOUT = 30
LATENCY = 0.5
PIL_FORMATS = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}


# ----------------------------------------------------------------------------------------------- helpers


def photos(n: int, prefix: str = "photo") -> list[tuple[str, bytes]]:
    """n small distinct JPEGs named photo01.jpg, photo02.jpg, …"""
    return [(f"{prefix}{i + 1:02d}.jpg", photo_bytes(size=(320, 240), colour=(20 * i % 256, 90, 200 - 10 * i)))
            for i in range(n)]


def new_batch(named: list[tuple[str, bytes]], prompt="on a marble counter", image_type="png",
              concurrency=4) -> batches.Batch:
    tasks = [batches.Task(name, prompt, data=data) for name, data in named]
    return batches.Batch(tasks, image_type, "novita", concurrency=concurrency)


def start(run: batches.Batch, limiter=None) -> None:
    run.start(api_key=TEST_KEY, cost=0.01, limiter=limiter)


def wait_finished(run: batches.Batch, timeout: float = TIMEOUT) -> float:
    """Poll until no task waits or runs; return the seconds it took."""
    began = time.monotonic()
    while not run.finished:
        if time.monotonic() - began > timeout:
            pytest.fail(f"the batch did not finish in {timeout} s: {run.counts()}")
        time.sleep(0.01)
    return time.monotonic() - began


def wait_for_requests(stub, count: int, timeout: float = 10) -> None:
    """Poll until the stand-in has received `count` requests."""
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


def said(task) -> str:
    """What the page shows for a failed task."""
    return describe(task.error, owner_key=False)[0]


def said_of(error: Exception) -> str:
    return describe(error, owner_key=False)[0]


def is_sentence(text: str | None) -> bool:
    return bool(text) and len(text) > 15 and text.rstrip()[-1] in ".!?" and "Traceback" not in text


@pytest.fixture
def in_flight(stub, monkeypatch):
    """Count how many requests the stand-in is holding in its latency sleep at once; returns a dict whose
    "peak" is the highest count seen."""
    seen = {"now": 0, "peak": 0}
    lock = threading.Lock()
    sleep = stub._sleep

    def counting_sleep(seconds):
        with lock:
            seen["now"] += 1
            seen["peak"] = max(seen["peak"], seen["now"])
        try:
            sleep(seconds)
        finally:
            with lock:
                seen["now"] -= 1

    monkeypatch.setattr(stub, "_sleep", counting_sleep)
    return seen


# ------------------------------------------------------------------------------------ the worker pool


def test_twelve_photos_at_concurrency_four_take_about_three_latencies(novita_env, in_flight):
    stub = novita_env
    stub.latency = LATENCY
    named = photos(12)
    run = new_batch(named, "on a sunny beach at sunset", "webp", concurrency=4)
    began = time.monotonic()
    start(run, MemoryLimiter(1000))
    wall = wait_finished(run)
    assert time.monotonic() - began >= wall
    derived = max_overlap([(r.received_at, r.received_at + LATENCY) for r in stub.requests])
    print(f"\n12 photos, concurrency 4, stand-in latency {LATENCY:.2f} s: {wall:.2f} s wall "
          f"= {wall / LATENCY:.2f} latencies (serial would be 12); peak in flight {in_flight['peak']} "
          f"(from received_at + latency: {derived})")

    assert 2.5 * LATENCY < wall < 6 * LATENCY, f"{wall:.2f} s for 12 photos at concurrency 4"
    assert in_flight["peak"] <= 4 and derived <= 4
    assert in_flight["peak"] == 4, "the four workers never ran at once"

    assert run.counts() == {"waiting": 0, "running": 0, "done": 12, "failed": 0}
    assert [t.source_name for t in run.tasks] == [name for name, _ in named]
    for task in run.tasks:
        item = task.item
        assert task.error is None and item is not None
        assert (item.prompt, item.image_type, item.engine) == ("on a sunny beach at sunset", "webp", "novita")
        assert item.source_name == task.source_name
        assert sniff_format(item.result) == "webp"
        assert item.download_name == f"{task.source_name[:-4]}-on-a-sunny-beach-at-sunset.webp"
    assert len(stub.requests) == 12
    for request in stub.requests:
        assert request.headers["Authorization"] == f"Bearer {TEST_KEY}"
        assert request.json["prompt"] == "on a sunny beach at sunset"
        assert request.json["extra"]["response_image_type"] == "webp"
    assert len({r.json["image_file"] for r in stub.requests}) == 12  # every photo sent once


def test_photos_are_prepared_ahead_and_only_sent_photos_show_as_running(novita_env):
    """One request at a time: while the first photo is with Novita the others are already prepared, and
    they show as waiting, not running."""
    novita_env.latency = 0.4
    run = new_batch(photos(3), concurrency=1)
    start(run)
    wait_for_requests(novita_env, 1)
    time.sleep(0.1)  # the first photo is in its 0.4 s at the stand-in
    assert run.counts() == {"waiting": 2, "running": 1, "done": 0, "failed": 0}
    assert all(task.prepared is not None and task.data is None for task in run.tasks)
    wait_finished(run)
    assert run.counts()[batches.DONE] == 3
    # each says how long it took once sent, not how long it waited for the photos before it
    assert all(task.item.seconds < 0.75 for task in run.tasks), [task.item.seconds for task in run.tasks]


def test_a_slot_is_handed_on_before_the_previews_are_made(novita_env, monkeypatch):
    """Making a result's previews does not keep the next photo from being sent."""
    from services import images

    made = images.previews

    def slow_previews(image):
        time.sleep(0.5)
        return made(image)

    monkeypatch.setattr(images, "previews", slow_previews)
    run = new_batch(photos(2), concurrency=1)
    start(run)
    wait_finished(run)
    first, second = novita_env.requests
    assert second.received_at - first.received_at < 0.4, "the second photo waited for the first one's previews"
    assert run.counts()[batches.DONE] == 2


def test_one_failure_leaves_eleven_results_and_retry_runs_only_that_one(novita_env):
    stub = novita_env
    stub.script("500")  # the first request to arrive fails
    run = new_batch(photos(12), image_type="jpeg")
    start(run, MemoryLimiter(1000))
    wait_finished(run)

    assert run.counts()["done"] == 11 and run.counts()["failed"] == 1
    failed = [t for t in run.tasks if t.status == batches.FAILED]
    assert len(failed) == 1 and failed[0].item is None
    assert is_sentence(said(failed[0])), failed[0].error
    assert failed[0].retryable
    assert len(stub.requests) == 12
    first = {t.source_name for t in run.collect()}
    assert len(first) == 11 and failed[0].source_name not in first

    assert run.retry_failed(api_key=TEST_KEY, cost=0.01, limiter=MemoryLimiter(1000)) == 1
    wait_finished(run)
    assert len(stub.requests) == 13, "retry sent more than the one failed photo"
    assert stub.requests[12].json["image_file"] == stub.requests[0].json["image_file"]
    assert run.counts() == {"waiting": 0, "running": 0, "done": 12, "failed": 0}
    assert failed[0].error is None and sniff_format(failed[0].item.result) == "jpeg"
    assert [t.source_name for t in run.collect()] == [failed[0].source_name]  # only the newly finished one
    assert run.collect() == []


def test_a_failure_never_stops_the_others(novita_env):
    stub = novita_env
    stub.script("400")  # Novita refuses the first request it gets
    named = photos(6)
    named.insert(2, ("notes.jpg", b"this is a text file, not a picture"))
    run = new_batch(named, concurrency=2)
    start(run)
    wait_finished(run)

    by_name = {t.source_name: t for t in run.tasks}
    unreadable = by_name["notes.jpg"]
    assert unreadable.status == batches.FAILED and is_sentence(said(unreadable))
    assert not unreadable.retryable
    refused = [t for t in run.tasks if t.status == batches.FAILED and t is not unreadable]
    assert len(refused) == 1
    assert refused[0].error.reason == "INVALID_REQUEST_BODY" and not refused[0].retryable
    assert run.counts()["done"] == 5
    assert len(stub.requests) == 6  # the unreadable file is never sent
    assert all(t.item is not None for t in run.tasks if t.status == batches.DONE)


def test_collect_hands_each_finished_task_over_once(novita_env):
    novita_env.latency = 0.1
    run = new_batch(photos(9), concurrency=3)
    start(run)
    handed: list[batches.Task] = []
    while not run.finished:
        handed += run.collect()
        time.sleep(0.005)
    handed += run.collect()
    assert len(handed) == 9
    assert len({id(t) for t in handed}) == 9
    assert {t.source_name for t in handed} == {t.source_name for t in run.tasks}
    assert all(t.status == batches.DONE and t.item is not None for t in handed)
    assert run.collect() == [] and run.collect() == []


def test_a_second_retry_press_sends_nothing_more(novita_env):
    stub = novita_env
    stub.always("500")
    run = new_batch(photos(8), concurrency=2)
    start(run)
    wait_finished(run)
    assert run.counts()["failed"] == 8 and len(stub.requests) == 8
    stub.always(None)
    stub.latency = 0.2
    assert run.retry_failed(api_key=TEST_KEY, cost=0.01, limiter=None) == 8
    assert run.retry_failed(api_key=TEST_KEY, cost=0.01, limiter=None) == 0  # the double click
    wait_finished(run)
    time.sleep(0.5)  # any duplicate still in flight lands
    assert run.counts()["done"] == 8
    assert len(stub.requests) == 16, f"{len(stub.requests) - 16} photos were sent twice"


# ------------------------------------------------------------------------------------------- uploads


def make_zip(entries: list[tuple[str, bytes | None]], compression=zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP of (name, bytes) entries; bytes None makes a folder entry."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as archive:
        for name, data in entries:
            if data is None:
                archive.writestr(zipfile.ZipInfo(name.rstrip("/") + "/"), b"")
            else:
                archive.writestr(name, data)
    return buf.getvalue()


def test_plain_photos_pass_through():
    named = photos(3)
    got, skipped = batches.photos_from_uploads(named)
    assert got == named and skipped == []


def test_a_zip_of_photos_is_expanded_skipping_folders_macos_and_hidden_files():
    a, b, c = photo_bytes(fmt="JPEG"), photo_bytes(fmt="PNG"), photo_bytes(fmt="WEBP")
    archive = make_zip([
        ("shoot/", None),
        ("shoot/a.jpg", a),
        ("shoot/.hidden.jpg", a),
        (".DS_Store", b"\0\0\0\1Bud1"),
        ("__MACOSX/", None),
        ("__MACOSX/shoot/._a.jpg", b"\0\5\26\7 resource fork"),
        ("shoot/more/b.png", b),
        ("c.webp", c),
    ])
    got, skipped = batches.photos_from_uploads([("first.jpg", a), ("Shoot.ZIP", archive), ("last.png", b)])
    assert [name for name, _ in got] == ["first.jpg", "a.jpg", "b.png", "c.webp", "last.png"]
    assert [data for _, data in got] == [a, a, b, c, b]
    assert skipped == []


@pytest.mark.parametrize("data", [b"not a zip at all", b"PK\x03\x04" + b"\0" * 40, "truncated"])
def test_a_damaged_zip_gives_a_sentence(data):
    if data == "truncated":
        whole = make_zip([("a.jpg", photo_bytes()), ("b.jpg", photo_bytes())])
        data = whole[: len(whole) // 2]
    got, skipped = batches.photos_from_uploads([("good.jpg", photo_bytes()), ("broken.zip", data)])
    assert [name for name, _ in got] == ["good.jpg"]
    assert len(skipped) == 1 and skipped[0].startswith("broken.zip:") and is_sentence(skipped[0])


def test_a_zip_with_a_damaged_member_gives_a_sentence():
    whole = bytearray(make_zip([("a.jpg", photo_bytes(fmt="PNG") + b"padding " * 500)]))
    start_of_data = 30 + len("a.jpg")
    for i in range(start_of_data + 10, start_of_data + 200):
        whole[i] ^= 0x5A
    got, skipped = batches.photos_from_uploads([("broken.zip", bytes(whole))])
    assert got == []
    assert len(skipped) == 1 and skipped[0].startswith("broken.zip:") and is_sentence(skipped[0])


def test_more_than_fifty_photos_are_capped_with_a_sentence():
    got, skipped = batches.photos_from_uploads(photos(53))
    assert len(got) == batches.MAX_PHOTOS == 50
    assert got[-1][0] == "photo50.jpg"
    assert len(skipped) == 1 and "50" in skipped[0] and is_sentence(skipped[0])


def test_a_zip_of_more_than_fifty_photos_stops_reading_with_a_sentence():
    archive = make_zip(photos(55), compression=zipfile.ZIP_STORED)
    got, skipped = batches.photos_from_uploads([("big.zip", archive)])
    assert len(got) == 50
    assert len(skipped) == 1 and skipped[0].startswith("big.zip:") and "50" in skipped[0]
    assert is_sentence(skipped[0])


def test_a_zip_over_the_size_cap_stops_reading_with_a_sentence(monkeypatch):
    named = photos(5)
    size = len(named[0][1])
    monkeypatch.setattr(batches, "MAX_ZIP_BYTES", int(size * 2.5))
    got, skipped = batches.photos_from_uploads([("heavy.zip", make_zip(named))])
    assert 1 <= len(got) <= 3 and len(got) < 5
    assert len(skipped) == 1 and skipped[0].startswith("heavy.zip:") and is_sentence(skipped[0])


# -------------------------------------------------------------------------------------- the results ZIP


def image_bytes(image_type: str, size=(64, 48), colour=(10, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, PIL_FORMATS[image_type])
    return buf.getvalue()


def item(source_name: str, prompt: str, image_type: str, seconds=1.234) -> HistoryItem:
    return HistoryItem(prompt=prompt, image_type=image_type, engine="novita", seconds=seconds,
                       source_name=source_name, result=image_bytes(image_type), before_preview=b"",
                       after_preview=b"", thumbnail=b"")


def open_zip(data: bytes) -> tuple[zipfile.ZipFile, list[dict[str, str]]]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    with archive.open("manifest.csv") as f:
        reader = csv.DictReader(io.TextIOWrapper(f, "utf-8", newline=""))
        assert reader.fieldnames == export.MANIFEST_FIELDS
        rows = list(reader)
    return archive, rows


def test_zip_results_names_formats_duplicates_and_manifest():
    prompt = 'on a "marble" counter, soft light'
    rows = [
        export.Row("mug.jpg", prompt, "png", "novita", item=item("mug.jpg", prompt, "png")),
        export.Row("mug.jpg", prompt, "png", "novita", item=item("mug.jpg", prompt, "png")),  # duplicate name
        export.Row("IMG_0042.HEIC", "café terrace", "jpeg", "novita", item=item("IMG_0042.HEIC", "café terrace", "jpeg")),
        export.Row("shoe.png", "in a snowy pine forest", "webp", "novita",
                   item=item("shoe.png", "in a snowy pine forest", "webp", seconds=0.5)),
        export.Row("broken.jpg", prompt, "png", "novita", error="This file is not a photo we can read."),
    ]
    archive, manifest = open_zip(export.zip_results(rows))
    names = archive.namelist()
    assert len(names) == len(set(names))
    assert names == ["mug-on-a-marble-counter-soft-light.png", "mug-on-a-marble-counter-soft-light-2.png",
                     "img-0042-cafe-terrace.jpg", "shoe-in-a-snowy-pine-forest.webp", "manifest.csv"]
    for name, wanted in zip(names[:4], ["PNG", "PNG", "JPEG", "WEBP"]):
        with Image.open(io.BytesIO(archive.read(name))) as image:
            assert image.format == wanted, name
            assert image.size == (64, 48)

    assert [r["file"] for r in manifest] == names[:4] + [""]
    assert [r["status"] for r in manifest] == ["done"] * 4 + ["failed"]
    assert [r["format"] for r in manifest] == ["png", "png", "jpeg", "webp", "png"]
    assert all(r["engine"] == "novita" for r in manifest)
    assert manifest[0]["prompt"] == prompt  # quotes and commas survive the CSV
    assert manifest[2]["prompt"] == "café terrace"
    assert [r["seconds"] for r in manifest] == ["1.23", "1.23", "1.23", "0.50", ""]
    assert manifest[4]["error"] == "This file is not a photo we can read."
    assert all(r["error"] == "" for r in manifest[:4])


def test_zip_results_of_the_history_and_of_nothing():
    history = History()
    for n, image_type in enumerate(["png", "jpeg", "webp"]):
        history.add(item(f"p{n}.jpg", f"prompt {n}", image_type))
    archive, manifest = open_zip(export.zip_results(export.rows_for(history)))
    assert archive.namelist() == ["p2-prompt-2.webp", "p1-prompt-1.jpg", "p0-prompt-0.png", "manifest.csv"]
    assert [r["status"] for r in manifest] == ["done"] * 3

    empty, rows = open_zip(export.zip_results([]))
    assert empty.namelist() == ["manifest.csv"] and rows == []


# ------------------------------------------------------------------------------------------- the pages


def uploads(named: list[tuple[str, bytes]]) -> list[tuple[str, bytes, str]]:
    return [(name, data, "application/zip" if name.endswith(".zip") else "image/jpeg") for name, data in named]


def progress_texts(at: AppTest) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def labels(at: AppTest, kind: str) -> list[str]:
    return [e.proto.label for e in at.get(kind)]


def run_batch(at: AppTest, named, prompt="in a bright modern office") -> AppTest:
    at.switch_page("pages/batch.py").run()
    assert not at.exception
    at.file_uploader(key="batch.upload").set_value(uploads(named))
    at.text_area(key="batch.prompt").input(prompt)
    at.button(key="batch.start").click()
    return at.run()


def test_batch_page_runs_every_photo_and_offers_the_zip(app, novita_env):
    named = photos(3) + [("more.zip", make_zip(photos(2, "zipped")))]
    run_batch(app, named)
    assert not app.exception and not app.error
    assert app.title[0].value == "Batch"
    history = app.session_state["history"]
    assert len(history) == 5
    assert {i.source_name for i in history} == {"photo01.jpg", "photo02.jpg", "photo03.jpg",
                                                "zipped01.jpg", "zipped02.jpg"}
    assert all(i.prompt == "in a bright modern office" and i.image_type == "png" for i in history)
    assert len(novita_env.requests) == 5
    assert any(t.startswith("5 done · 0 failed") for t in progress_texts(app)), progress_texts(app)
    assert "Download all (ZIP)" in labels(app, "download_button")
    assert not [b for b in app.button if b.key == "batch.run.retry"]
    assert app.session_state["paid_images"] == 5

    app.switch_page("pages/history.py").run()
    assert not app.exception
    assert "Download all as ZIP" in labels(app, "download_button")


def test_a_batch_holds_no_more_than_history_keeps(app, novita_env):
    """History keeps its latest results within its bounds; a batch lets go of the ones it dropped, so the
    session never holds more than that. The rows and the ZIP's manifest still say they were made."""
    app.session_state["history"] = History(max_items=2)
    run_batch(app, photos(3))
    assert not app.exception and not app.error
    history = app.session_state["history"]
    run = app.session_state["batch.run"]
    kept = [task for task in run.tasks if task.item is not None]
    released = [task for task in run.tasks if task.released]
    assert len(history) == 2 and len(kept) == 2 and len(released) == 1
    assert {task.item.id for task in kept} == {item.id for item in history}
    assert released[0].item is None and released[0].seconds > 0 and released[0].status == batches.DONE
    shown = [block.value for block in app.markdown]
    assert any(released[0].source_name in text and "no longer kept" in text for text in shown), shown
    assert any("History keeps the latest 2 results" in block.value for block in app.info)

    with zipfile.ZipFile(io.BytesIO(export.zip_results(run.rows(said_of)))) as archive:
        manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
        assert len(archive.namelist()) == 3  # two images and the manifest
    statuses = sorted(row["status"] for row in manifest)
    assert statuses == ["done", "done", "done, no longer kept"]
    gone = next(row for row in manifest if row["status"] == "done, no longer kept")
    assert gone["file"] == "" and float(gone["seconds"]) > 0


def test_batch_page_retry_failed_completes_the_one(app, novita_env):
    novita_env.script("500")
    run_batch(app, photos(4))
    assert not app.exception
    assert len(app.session_state["history"]) == 3
    assert any(t.startswith("3 done · 1 failed") for t in progress_texts(app)), progress_texts(app)
    retry = app.button(key="batch.run.retry")
    assert retry.label == "Retry failed (1)"
    assert "Download all (ZIP)" in labels(app, "download_button")  # the three that worked
    retry.click().run()
    assert not app.exception
    assert len(app.session_state["history"]) == 4
    assert len(novita_env.requests) == 5
    assert any(t.startswith("4 done · 0 failed") for t in progress_texts(app)), progress_texts(app)
    assert not [b for b in app.button if b.key == "batch.run.retry"]


def test_batch_page_says_what_is_missing(app, novita_env):
    app.switch_page("pages/batch.py").run()
    app.button(key="batch.start").click().run()
    assert "Add some photos first" in app.warning[0].value
    app.file_uploader(key="batch.upload").set_value(uploads(photos(2)))
    app.button(key="batch.start").click().run()
    assert "Write a prompt first" in app.warning[0].value
    assert novita_env.requests == [] and len(app.session_state["history"]) == 0


def test_history_page_offers_download_all_as_zip(app):
    run_batch(app, photos(2))
    app.switch_page("pages/history.py").run()
    assert not app.exception
    zips = [b for b in app.get("download_button") if b.proto.label == "Download all as ZIP"]
    assert len(zips) == 1
    assert "history.zip" in zips[0].proto.id


def test_variants_page_grid_slider_and_open_in_slider(app, novita_env):
    app.switch_page("pages/variants.py").run()
    assert not app.exception
    app.file_uploader(key="upload").set_value(("mug.jpg", photo_bytes(), "image/jpeg")).run()
    prompts = ["in a warehouse", "on a sunny beach at sunset", "in a snowy pine forest"]
    for i, prompt in enumerate(prompts):
        app.text_input(key=f"variants.prompt{i}").input(prompt)
    app.button(key="variants.start").click().run()
    assert not app.exception and not app.error

    history = app.session_state["history"]
    assert sorted(i.prompt for i in history) == sorted(prompts)
    assert all(i.source_name == "mug.jpg" for i in history)
    assert len(novita_env.requests) == 3
    assert len({r.json["image_file"] for r in novita_env.requests}) == 1  # the same photo each time
    assert len(app.get("iframe")) == 1
    opens = [b for b in app.button if (b.key or "").startswith("variants.open.")]
    assert len(opens) == 3
    run = app.session_state["variants.run"]
    ids = [t.item.id for t in run.tasks]
    assert [b.key for b in opens] == [f"variants.open.{i}" for i in ids]
    captions = [c.value for c in app.caption]
    assert any(f"“{prompts[0]}”" in c for c in captions)  # the first is shown until another is picked

    app.button(key=f"variants.open.{ids[2]}").click().run()
    assert not app.exception
    assert app.session_state["variants.picked"] == ids[2]
    assert len(app.get("iframe")) == 1
    captions = [c.value for c in app.caption]
    assert any(f"“{prompts[2]}”" in c for c in captions), captions
    assert not any(f"“{prompts[0]}”" in c for c in captions)


def _press_start_twice(kind: str) -> None:
    """An app that presses a page's start button twice in one run: the second press's on_click arriving
    while the first run is in flight, as a quick double click does when it reaches the server before the
    disabled button reaches the browser."""
    import time as _time

    import streamlit as st

    from components import batch_view, session
    from tests.conftest import photo_bytes

    class Upload:  # what st.file_uploader hands over: a name and getvalue()
        def __init__(self, name, data):
            self.name, self._data = name, data

        def getvalue(self):
            return self._data

    session.init()
    if "first" not in st.session_state:
        if kind == "batch":
            st.session_state["batch.upload"] = [Upload(f"p{i}.jpg", photo_bytes(colour=(60 * i, 90, 90)))
                                                for i in range(4)]
            st.session_state["batch.prompt"] = "in a warehouse"
            press, run_key = batch_view.start_batch, "batch.run"
        else:
            session.set_photo("mug.jpg", photo_bytes(), "upload")
            for i in range(4):
                st.session_state[f"variants.prompt{i}"] = f"idea {i}"
            press, run_key = batch_view.start_variants, "variants.run"
        press()
        st.session_state["first"] = st.session_state[run_key]
        assert batch_view.is_running(run_key)
        press()  # the second press
        st.session_state["second"] = st.session_state[run_key]
        for run in (st.session_state["first"], st.session_state["second"]):
            while not run.finished:
                _time.sleep(0.02)


@pytest.mark.parametrize("kind", ["batch", "variants"])
def test_a_second_press_while_a_run_is_in_flight_sends_nothing(novita_env, kind):
    novita_env.latency = 0.3
    st.cache_resource.clear()
    at = AppTest.from_function(_press_start_twice, args=(kind,), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    time.sleep(0.3)
    assert at.session_state["second"] is at.session_state["first"], "the second press replaced the run"
    assert len(novita_env.requests) == 4


def test_a_photo_held_by_the_shared_keys_limit_knows_its_place_in_line(novita_env):
    """With the key's budget used up, the photos that wait say where they are in line and about how long,
    and the page shows it instead of "running"."""
    run = new_batch(photos(3), concurrency=3)
    start(run, limiter=MemoryLimiter(1, 60.0))  # one slot a minute: the first photo goes, the rest wait
    deadline = time.monotonic() + 10
    while sum(task.waiting is not None for task in run.tasks) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    places = sorted(task.waiting for task in run.tasks if task.waiting is not None)
    try:
        assert [place for place, _ in places] == [1, 2], places
        assert all(40 < seconds <= 120 for _, seconds in places), places  # a minute's window, then the next
        at = AppTest.from_function(_show_rows, kwargs={"run": run}, default_timeout=TIMEOUT).run()
        shown = [block.value for block in at.markdown]
        assert sum("the shared key is busy: 1st in line, about" in text for text in shown) == 1, shown
        assert sum("the shared key is busy: 2nd in line, about" in text for text in shown) == 1, shown
    finally:
        run.cancel.set()
    wait_finished(run, timeout=5)
    assert all(task.waiting is None for task in run.tasks)
    assert len(novita_env.requests) == 1


def _show_rows(run):
    from components import batch_view

    batch_view._rows(run)


def test_cancel_does_not_wait_for_the_photos_already_sent(novita_env):
    """Photos waiting for a free slot end as soon as Cancel the rest is pressed, while the one already
    with Novita finishes on its own."""
    novita_env.latency = 2.0
    run = new_batch(photos(3), concurrency=1)
    start(run)
    wait_for_requests(novita_env, 1)
    run.cancel.set()
    time.sleep(0.6)
    assert run.counts() == {"waiting": 0, "running": 1, "done": 0, "failed": 2}
    wait_finished(run)
    assert run.counts()[batches.DONE] == 1 and len(novita_env.requests) == 1


def test_a_photo_whose_slot_comes_free_after_cancel_is_not_sent(novita_env):
    """Cancel the rest pressed after a photo's preparation was skipped, just as a slot comes free: the
    worker must not go on to send it (the race a real run hits now and then, made certain here)."""
    from concurrent.futures import Future

    run = new_batch(photos(1))
    task = run.tasks[0]
    run.cancel.set()
    skipped = Future()
    skipped.set_result(None)
    run._prepare(task)
    run._run(task, skipped, threading.BoundedSemaphore(1), TEST_KEY, 0.01, None)
    assert task.prepared is None and task.data is not None  # kept, so a retry can prepare it
    assert task.status == batches.FAILED and task.retryable and "nothing was" in said(task)
    assert novita_env.requests == []


def test_a_result_whose_previews_failed_is_not_paid_for_twice(novita_env, monkeypatch):
    from services import images

    made, calls = images.previews, []

    def previews_once_broken(image):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("no room for the previews")
        return made(image)

    monkeypatch.setattr(images, "previews", previews_once_broken)
    run = new_batch(photos(1))
    start(run)
    wait_finished(run)
    task = run.tasks[0]
    assert task.status == batches.FAILED and task.retryable and is_sentence(said(task))
    assert run.retry_failed(api_key=TEST_KEY, cost=0.01, limiter=None) == 1
    wait_finished(run)
    assert task.status == batches.DONE and task.item is not None
    assert len(novita_env.requests) == 1, "the retry sent the photo again"


def test_a_finished_task_keeps_no_second_copy_of_its_photo(novita_env):
    run = new_batch(photos(2))
    start(run)
    wait_finished(run)
    for task in run.tasks:
        assert task.item is not None and task.item.before_preview
        assert task.prepared is None and task.before_preview is None and task.data is None and task.reply is None


def test_cancel_stops_what_is_not_sent_and_retry_runs_it_later(novita_env):
    """With the key's budget used up, Cancel ends every waiting photo at once and sends nothing more;
    Retry failed runs the cancelled photos when the person wants."""
    run = new_batch(photos(4), concurrency=2)
    start(run, limiter=MemoryLimiter(1, 60.0))  # one slot a minute: the first photo goes, the rest wait
    wait_for_requests(novita_env, 1)
    run.cancel.set()
    assert wait_finished(run, timeout=5) < 2
    counts = run.counts()
    assert counts[batches.DONE] == 1 and counts[batches.FAILED] == 3
    assert len(novita_env.requests) == 1
    cancelled = [task for task in run.tasks if task.status == batches.FAILED]
    assert all(task.retryable and "nothing was" in said(task) for task in cancelled)

    assert run.retry_failed(api_key=TEST_KEY, cost=0.01, limiter=MemoryLimiter(100, 60.0)) == 3
    wait_finished(run)
    assert run.counts()[batches.DONE] == 4 and len(novita_env.requests) == 4
