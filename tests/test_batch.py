"""Batch and Variants: the results ZIP with its manifest, and the two pages
through AppTest against the loopback stand-in (the run engine itself is in test_runs.py)."""

from __future__ import annotations

import csv
import io
import time
import zipfile

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from services import budget, export, runs
from services.history import History
from services.items import HistoryItem
from services.quota import MemoryLimiter
from tests.conftest import TEST_KEY, photo_bytes
from tests.test_runs import wait_finished
from tests.test_uploads import make_zip

TIMEOUT = 30
LATENCY = 0.5
PIL_FORMATS = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}


# ----------------------------------------------------------------------------------------------- helpers


def photos(n: int, prefix: str = "photo") -> list[tuple[str, bytes]]:
    """n small distinct JPEGs named photo01.jpg, photo02.jpg, …"""
    return [(f"{prefix}{i + 1:02d}.jpg", photo_bytes(size=(320, 240), colour=(20 * i % 256, 90, 200 - 10 * i)))
            for i in range(n)]


def is_sentence(text: str | None) -> bool:
    return bool(text) and len(text) > 15 and text.rstrip()[-1] in ".!?" and "Traceback" not in text




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
    at.switch_page("views/batch.py").run()
    assert not at.exception
    at.file_uploader(key="batch.upload").set_value(uploads(named))
    if prompt is not None:  # None: the Background chosen needs no prompt, and its box is disabled
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
    assert not [b for b in app.button if b.key == "batch.retry"]
    assert app.session_state["account"].images == 5

    app.switch_page("views/history.py").run()
    assert not app.exception
    assert "Download all as ZIP" in labels(app, "download_button")


def test_a_batch_holds_no_more_than_history_keeps(app, novita_env):
    """History keeps its latest results within its bounds; a batch lets go of the ones it dropped, so the
    session never holds more than that. The rows and the ZIP's manifest still say they were made."""
    app.session_state["history"] = History(max_items=2)
    run_batch(app, photos(3))
    assert not app.exception and not app.error
    history = app.session_state["history"]
    run = app.session_state["batch.page"].run
    kept = [task for task in run.tasks if task.item is not None]
    released = [task for task in run.tasks if task.released]
    assert len(history) == 2 and len(kept) == 2 and len(released) == 1
    assert {task.item.id for task in kept} == {item.id for item in history}
    assert released[0].item is None and released[0].seconds > 0 and released[0].status == runs.DONE
    shown = [block.value for block in app.markdown]
    assert any(released[0].source_name in text and "no longer kept" in text for text in shown), shown
    assert any("History keeps the latest 2 results" in block.value for block in app.info)

    with zipfile.ZipFile(io.BytesIO(export.zip_results(run.rows(str)))) as archive:
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
    retry = app.button(key="batch.retry")
    assert retry.label == "Retry failed (1)"
    assert "Download all (ZIP)" in labels(app, "download_button")  # the three that worked
    retry.click().run()
    assert not app.exception
    assert len(app.session_state["history"]) == 4
    assert len(novita_env.requests) == 5
    assert any(t.startswith("4 done · 0 failed") for t in progress_texts(app)), progress_texts(app)
    assert not [b for b in app.button if b.key == "batch.retry"]


def test_what_a_batch_left_out_stays_said_beside_its_outcome(app, novita_env):
    run_batch(app, photos(2) + [("broken.zip", b"not a zip at all")])
    assert not app.exception and len(app.session_state["history"]) == 2
    assert any(t.startswith("2 done") for t in progress_texts(app))
    said = [w.value for w in app.warning]
    assert len(said) == 1 and "broken.zip" in said[0]
    app.run()  # another rerun of the finished batch: still said, until the next batch starts
    assert [w.value for w in app.warning] == said
    run_batch(app, photos(1, "next"))
    assert not app.warning


def test_batch_page_says_what_is_missing(app, novita_env):
    app.switch_page("views/batch.py").run()
    app.button(key="batch.start").click().run()
    assert "Add some photos first" in app.warning[0].value
    app.file_uploader(key="batch.upload").set_value(uploads(photos(2)))
    app.button(key="batch.start").click().run()
    assert "Write a prompt first" in app.warning[0].value
    assert novita_env.requests == [] and len(app.session_state["history"]) == 0


def test_history_page_offers_download_all_as_zip(app):
    run_batch(app, photos(2))
    app.switch_page("views/history.py").run()
    assert not app.exception
    zips = [b for b in app.get("download_button") if b.proto.label == "Download all as ZIP"]
    assert len(zips) == 1
    assert "history.zip" in zips[0].proto.id


def test_variants_page_grid_slider_and_open_in_slider(app, novita_env):
    app.switch_page("views/variants.py").run()
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
    run = app.session_state["variants.page"].run
    ids = [t.item.id for t in run.tasks]
    assert [b.key for b in opens] == [f"variants.open.{i}" for i in ids]
    captions = [c.value for c in app.caption]
    assert any(f"“{prompts[0]}”" in c for c in captions)  # the first is shown until another is picked

    app.button(key=f"variants.open.{ids[2]}").click().run()
    assert not app.exception
    assert app.session_state["variants.page"].opened == ids[2]
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

    from components import actions, session
    from tests.conftest import Upload, photo_bytes

    session.init()
    if "first" not in st.session_state:
        if kind == "batch":
            st.session_state["batch.upload"] = [Upload(f"p{i}.jpg", photo_bytes(colour=(60 * i, 90, 90)))
                                                for i in range(4)]
            st.session_state["batch.prompt"] = "in a warehouse"
            name = "batch"
        else:
            session.set_photo("mug.jpg", photo_bytes(), "upload")
            for i in range(4):
                st.session_state[f"variants.prompt{i}"] = f"idea {i}"
            name = "variants"
        actions.start(name)
        st.session_state["first"] = session.page(name).run
        assert actions.is_running(name)
        actions.start(name)  # the second press
        st.session_state["second"] = session.page(name).run
        for run in (st.session_state["first"], st.session_state["second"]):
            while not run.finished:
                _time.sleep(0.02)


@pytest.mark.parametrize("kind", ["batch", "variants"])
def test_a_second_press_while_a_run_is_in_flight_sends_nothing(novita_env, kind):
    novita_env.latency = 0.3
    st.cache_resource.clear()
    at = AppTest.from_function(_press_start_twice, args=(kind,), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception  # the app waited for both presses' runs to finish: all is sent
    assert at.session_state["second"] is at.session_state["first"], "the second press replaced the run"
    assert len(novita_env.requests) == 4


def test_a_photo_held_by_the_shared_keys_limit_knows_its_place_in_line(novita_env):
    """With the key's budget used up, the photos that wait say where they are in line and about how long,
    and the page shows it instead of "running"."""
    tasks = [runs.Task(name, "on a marble counter", data=data) for name, data in photos(3)]
    run = runs.Run(tasks, "png", "novita")
    ledger = budget.Ledger(MemoryLimiter(1, 60.0), daily_limit=100)  # one slot a minute: the rest wait
    run.start(runs.Spending(TEST_KEY, ledger, None, 0.01, 3))
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
        run.cancel_rest()
    wait_finished(run, timeout=5)
    assert all(task.waiting is None for task in run.tasks)
    assert len(novita_env.requests) == 1


def _show_rows(run):
    from components import run_view

    run_view._rows(run)


def _press_with_only_a_zip_bomb() -> None:
    import io as _io
    import zipfile as _zipfile

    import streamlit as st

    from components import actions, session
    from tests.conftest import Upload

    session.init()
    bomb = _io.BytesIO()
    with _zipfile.ZipFile(bomb, "w", _zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("huge.png", b"\0" * 40_000_000)  # 40 MB that packs into a few KB
    st.session_state["batch.upload"] = [Upload("bomb.zip", bomb.getvalue())]
    st.session_state["batch.prompt"] = "in a warehouse"
    actions.start("batch")
    st.session_state["said"] = session.page("batch").message


def test_a_batch_whose_every_upload_is_refused_says_why(novita_env):
    at = AppTest.from_function(_press_with_only_a_zip_bomb, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    said = at.session_state["said"]
    assert "“huge.png” in “bomb.zip”" in said and "the limit is 30 MB" in said, said
    assert novita_env.requests == []
