"""The Batch page in a real browser: several photos and a ZIP → one prompt → Replace all backgrounds →
progress → Download all (ZIP) → the names, formats and manifest inside it."""

from __future__ import annotations

import csv
import io
import re
import threading
import zipfile

from PIL import Image

from services.export import MANIFEST_FIELDS
from tests import novita_stub
from tests.e2e.conftest import E2E_KEY, RUN_TIMEOUT, expect, jpeg, require_assets

require_assets()

PROMPT = "on a marble counter, soft light"
SLUG = "on-a-marble-counter-soft-light"


# Seconds a held reply waits at most for the test to release it: under the app's 3 s read timeout
# (NOVITA_TIMEOUT), so a reply held too long still comes back as a result.
HOLD_AT_MOST = 2.4


def hold_replies(monkeypatch, stub, first: int, last: int) -> threading.Event:
    """The stand-in holds its answers to the `first`..`last` photos sent (counted from 1, in the order they
    arrive) until the returned event is set, or HOLD_AT_MOST s: a state of the page the test looks at does
    not pass by on a slow machine."""
    release = threading.Event()
    send = novita_stub._Handler._send

    def held_send(handler, *args, **kwargs):
        if handler.answer_at is not None:  # an image answer, made and waiting for its latency
            arrived = [r.request_id for r in stub.posts()]
            if handler.request_id in arrived[first - 1:last]:
                release.wait(HOLD_AT_MOST)
        return send(handler, *args, **kwargs)

    monkeypatch.setattr(novita_stub._Handler, "_send", held_send)
    return release


def zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__MACOSX/._shoe.jpg", b"\0\5\26\7 resource fork")
        for name, data in entries:
            archive.writestr(name, data)
    return buf.getvalue()


def test_batch_upload_run_progress_and_zip(studio, app_novita, stub, monkeypatch):
    stub.latency = 0.2
    files = [
        {"name": "mug.jpg", "mimeType": "image/jpeg", "buffer": jpeg((640, 480), (200, 60, 40))},
        {"name": "vase.jpg", "mimeType": "image/jpeg", "buffer": jpeg((480, 640), (40, 120, 200))},
        {"name": "lamp.jpg", "mimeType": "image/jpeg", "buffer": jpeg((500, 500), (60, 160, 60))},
        {"name": "more.zip", "mimeType": "application/zip",
         "buffer": zip_of([("shoot/shoe.jpg", jpeg((600, 400), (90, 90, 20))),
                           ("shoot/mug.jpg", jpeg((400, 300), (150, 20, 150)))])},  # same name as an upload
    ]
    expected = {"mug.jpg": (640, 480), "vase.jpg": (480, 640), "lamp.jpg": (500, 500), "shoe.jpg": (600, 400)}
    total = 5

    app = studio(app_novita)
    app.go_to("Batch")
    page = app.page
    app.act(lambda: page.set_input_files('input[type="file"]', files=files))
    expect(page.get_by_text("mug.jpg", exact=True).first).to_be_visible()  # the uploader lists the files
    app.type_prompt(PROMPT)
    app.choose_format("JPEG")

    release = hold_replies(monkeypatch, stub, 1, total)  # the run stays in progress until it was seen
    page.get_by_role("button", name=re.compile("Replace all backgrounds")).click()
    # the run is watched: its progress while photos remain, which the finished page does not match
    in_progress = re.compile(rf"^\d done · 0 failed · [1-{total}] remaining of {total}$")
    expect(page.get_by_text(in_progress)).to_be_visible()
    release.set()
    expect(page.get_by_text(re.compile(rf"^{total} done · 0 failed · 0 remaining of {total}$"))).to_be_visible(
        timeout=RUN_TIMEOUT)
    app.settle(RUN_TIMEOUT)
    expect(page.get_by_text(re.compile(r"— done in \d+\.\d s"))).to_have_count(total)
    expect(page.get_by_role("button", name=re.compile(r"Retry failed"))).to_have_count(0)

    got = app.download(page.get_by_role("button", name=re.compile(r"Download all \(ZIP\)")))
    assert got.name == "batch-results.zip"
    assert E2E_KEY.encode() not in got.data
    archive = zipfile.ZipFile(io.BytesIO(got.data))
    assert archive.testzip() is None
    names = archive.namelist()
    assert names[-1] == "manifest.csv"
    images = names[:-1]
    assert sorted(images) == sorted([f"mug-{SLUG}.jpg", f"vase-{SLUG}.jpg", f"lamp-{SLUG}.jpg",
                                     f"shoe-{SLUG}.jpg", f"mug-{SLUG}-2.jpg"])
    sizes = {}
    for name in images:
        with Image.open(io.BytesIO(archive.read(name))) as image:
            assert image.format == "JPEG", name
            sizes[name] = image.size
    assert sizes[f"vase-{SLUG}.jpg"] == expected["vase.jpg"]
    assert sizes[f"lamp-{SLUG}.jpg"] == expected["lamp.jpg"]
    assert sizes[f"shoe-{SLUG}.jpg"] == expected["shoe.jpg"]
    assert {sizes[f"mug-{SLUG}.jpg"], sizes[f"mug-{SLUG}-2.jpg"]} == {(640, 480), (400, 300)}

    reader = csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8")))
    assert reader.fieldnames == MANIFEST_FIELDS
    rows = list(reader)
    assert [r["file"] for r in rows] == images
    for row in rows:
        assert (row["prompt"], row["format"], row["engine"], row["status"], row["error"]) == (
            PROMPT, "jpeg", "novita", "done", "")
        assert float(row["seconds"]) > 0

    assert len(stub.requests) == total
    assert all(r.json["prompt"] == PROMPT and r.json["extra"]["response_image_type"] == "jpeg"
               for r in stub.requests)
    expect(page.get_by_text("This session: 5 results in history")).to_be_visible()

    app.screenshot("batch.png", height=1700)
    app.check()


def test_the_sidebar_counts_results_and_spend_as_a_batch_runs(studio, app_novita, stub, monkeypatch):
    """Four photos go at once and a fifth after them: while the fifth is out, the sidebar already counts
    the first four and what they cost."""
    stub.latency = 0.3
    release = hold_replies(monkeypatch, stub, 5, 5)  # the fifth stays out until the test has looked
    files = [{"name": f"shot{n}.jpg", "mimeType": "image/jpeg", "buffer": jpeg((320, 240), (40 * n, 90, 120))}
             for n in range(5)]
    app = studio(app_novita)
    app.go_to("Batch")
    page = app.page
    app.act(lambda: page.set_input_files('input[type="file"]', files=files))
    app.type_prompt(PROMPT)
    page.get_by_role("button", name=re.compile("Replace all backgrounds")).click()
    expect(page.get_by_text("4 done · 0 failed · 1 remaining of 5")).to_be_visible(timeout=RUN_TIMEOUT)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text(re.compile(r"This session: 4 results in history, 4 Novita images"))).to_be_visible()
    release.set()
    expect(page.get_by_text("5 done · 0 failed · 0 remaining of 5")).to_be_visible(timeout=RUN_TIMEOUT)
    app.settle(RUN_TIMEOUT)
    expect(sidebar.get_by_text(re.compile(r"This session: 5 results in history, 5 Novita images"))).to_be_visible()
