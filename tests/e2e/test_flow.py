"""The main path in a real browser, as a person walks it: photo → prompt → format → run → slider →
download, again with another prompt, then the History page."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from urllib.parse import urlsplit

import pytest
from PIL import Image

from tests.e2e.conftest import E2E_KEY, FORMATS, RUN_TIMEOUT, expect, heic, jpeg, phone_jpeg, require_assets

require_assets()

PROMPT = "on a marble counter, soft light"


def sent_image(request) -> Image.Image:
    """The photo the app sent to the stand-in, decoded."""
    return Image.open(io.BytesIO(base64.b64decode(request.json["image_file"])))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_photo_prompt_format_run_slide_download(studio, app_novita, stub, fmt):
    pil_format, ext = FORMATS[fmt]
    app = studio(app_novita)
    app.upload("mug.jpg", jpeg())
    assert "640 × 480 px" in app.photo_line()
    app.replace(PROMPT, fmt)

    expect(app.result_caption(PROMPT)).to_contain_text(f"{fmt} · Novita")
    expect(app.result_caption(PROMPT)).to_contain_text("640 × 480 px")
    before, after = app.slider_images()
    assert before["src"] != after["src"], "the slider shows the same picture on both sides"
    assert abs(before["w"] / before["h"] - 640 / 480) < 0.02

    assert app.handle_position() == pytest.approx(50, abs=1)
    assert app.drag_slider(0.2) == pytest.approx(20, abs=6)
    assert app.drag_slider(0.85) == pytest.approx(85, abs=6)
    if fmt == "PNG":
        app.screenshot("main-flow-novita.png", height=1900)

    got = app.download()
    assert got.name == f"mug-on-a-marble-counter-soft-light.{ext}"
    assert got.image.format == pil_format
    assert got.image.size == (640, 480)
    assert E2E_KEY.encode() not in got.data

    assert len(stub.requests) == 1
    sent = stub.requests[0]
    assert sent.headers["Authorization"] == f"Bearer {E2E_KEY}"
    assert sent.json["prompt"] == PROMPT
    assert sent.json["extra"]["response_image_type"] == fmt.lower()
    app.check()


def test_phone_photo_with_exif_rotation_is_used_upright(studio, app_novita, stub):
    app = studio(app_novita)
    app.upload("IMG_2024.jpg", phone_jpeg())
    assert "300 × 400 px" in app.photo_line()
    expect(app.page.get_by_text("turned upright")).to_be_visible()
    app.replace("in a bright modern office", "PNG")

    sent = sent_image(stub.requests[0])
    assert sent.size == (300, 400)
    r, g, b = sent.convert("RGB").getpixel((150, 15))  # the band stored on the left is now on top
    assert r > 180 and g < 80 and b < 80, (r, g, b)

    before, after = app.slider_images()
    assert before["w"] < before["h"] and after["w"] < after["h"], (before, after)
    expect(app.result_caption("in a bright modern office")).to_contain_text("300 × 400 px")

    got = app.download()
    assert got.name == "img-2024-in-a-bright-modern-office.png"
    assert (got.image.format, got.image.size) == ("PNG", (300, 400))
    r, g, b = got.image.convert("RGB").getpixel((150, 50))  # below the stand-in's painted border
    assert r > 180 and g < 80 and b < 80, (r, g, b)


def test_iphone_heic_photo(studio, app_novita, stub):
    app = studio(app_novita)
    app.upload("IMG_0042.HEIC", heic(), mime="image/heic")
    assert "480 × 360 px" in app.photo_line()
    app.replace("in a snowy pine forest", "WEBP")
    assert sent_image(stub.requests[0]).format in ("JPEG", "PNG")  # converted before sending
    got = app.download()
    assert got.name == "img-0042-in-a-snowy-pine-forest.webp"
    assert (got.image.format, got.image.size) == ("WEBP", (480, 360))


def test_big_photo_is_scaled_down_and_says_so(studio, app_novita, stub):
    app = studio(app_novita)
    app.upload("big.jpg", jpeg(size=(3000, 2000)))
    expect(app.page.get_by_text(re.compile(r"scaled down from 3000 × 2000"))).to_be_visible()
    app.replace("in a warehouse", "JPEG")
    got = app.download()
    w, h = got.image.size
    assert max(w, h) == 2048 and abs(w / h - 1.5) < 0.01, (w, h)
    assert sent_image(stub.requests[0]).size == (w, h)


def test_double_click_and_leaving_mid_run_send_one_paid_request_each(studio, app_novita, stub):
    stub.latency = 1.5
    app = studio(app_novita)
    app.upload("mug.jpg", jpeg())
    app.type_prompt("in a warehouse").choose_format("PNG")
    app.start_run(app.replace_button().dblclick)
    expect(app.result_caption("in a warehouse")).to_be_visible()
    assert len(stub.requests) == 1

    # Press again and walk over to History while it runs; the result is there on coming back.
    app.type_prompt("on a sunny beach at sunset")
    app.press_replace(wait=False)
    expect(app.replace_button()).to_be_disabled()
    app.go_to("History")
    app.go_to("Replace background")
    expect(app.result_caption("on a sunny beach at sunset")).to_be_visible(timeout=RUN_TIMEOUT)
    app.wait_for_slider()
    assert app.gallery_count() == 2
    assert len(stub.requests) == 2
    app.go_to("History")
    expect(app.page.get_by_text("2 results in this browser")).to_be_visible()


def test_run_again_then_history_reopen_download_delete(studio, app_novita, stub):
    app = studio(app_novita)
    app.upload("mug.jpg", jpeg())
    app.replace("in a warehouse", "PNG")
    first = app.download()
    assert first.name == "mug-in-a-warehouse.png"

    # Again, same photo, an idea from the chips under the box and another format.
    app.click_pill("on a sunny beach at sunset")
    expect(app.page.get_by_label("Prompt", exact=True)).to_have_value("on a sunny beach at sunset")
    app.replace(fmt="JPEG")
    expect(app.result_caption("on a sunny beach at sunset")).to_be_visible()
    second = app.download()
    assert second.name == "mug-on-a-sunny-beach-at-sunset.jpg"
    assert (second.image.format, second.image.size) == ("JPEG", (640, 480))
    assert len(stub.requests) == 2
    assert stub.requests[0].json["image_file"] == stub.requests[1].json["image_file"]
    assert app.gallery_count() == 2
    expect(app.page.get_by_text("This session: 2 results in history")).to_be_visible()

    app.go_to("History")
    expect(app.page.get_by_text("2 results in this browser")).to_be_visible()
    assert app.gallery_count() == 2
    expect(app.result_caption("on a sunny beach at sunset")).to_be_visible()  # the newest is shown
    app.wait_for_slider()

    # Reopen the older one: it replaces the one in the slider, and downloads as itself.
    app.act(app.gallery_buttons("Open").nth(1).click)
    expect(app.result_caption("in a warehouse")).to_be_visible()
    expect(app.result_caption("on a sunny beach at sunset")).to_have_count(0)
    app.wait_for_slider()
    reopened = app.download()
    assert reopened.name == "mug-in-a-warehouse.png" and reopened.data == first.data
    app.screenshot("history.png", height=1700)

    # Delete the older one from the gallery.
    app.act(app.gallery_buttons("Delete").nth(1).click)
    expect(app.gallery_buttons("Open")).to_have_count(1)
    expect(app.page.get_by_text("1 result in this browser")).to_be_visible()
    expect(app.page.get_by_text("This session: 1 result in history")).to_be_visible()
    app.wait_for_slider()
    expect(app.result_caption("on a sunny beach at sunset")).to_be_visible()
    app.screenshot("history-after-delete.png", height=1700)
    zipped = app.download(app.page.get_by_role("button", name="Download all as ZIP"))
    archive = zipfile.ZipFile(io.BytesIO(zipped.data))
    assert archive.testzip() is None
    assert "mug-on-a-sunny-beach-at-sunset.jpg" in archive.namelist()
    assert "mug-in-a-warehouse.png" not in archive.namelist()  # deleted means gone

    # Back on the main page the photo is still in use and the gallery agrees.
    app.go_to("Replace background")
    expect(app.page.get_by_text("Photo in use:")).to_be_visible()
    assert app.gallery_count() == 1
    assert len(stub.requests) == 2  # reopening, downloading and deleting sent nothing

    # Clear all, behind its confirmation.
    app.go_to("History")
    app.page.get_by_role("button", name="Clear all").click()
    app.act(app.page.get_by_role("button", name="Delete all").click)
    expect(app.page.get_by_text("No results yet")).to_be_visible()
    assert app.gallery_count() == 0
    expect(app.page.locator('iframe[data-testid="stIFrame"]')).to_have_count(0)


def test_offline_studio_without_a_key(studio, app_offline, stub):
    app = studio(app_offline)
    expect(app.page.get_by_text("No Novita key is set")).to_be_visible()
    expect(app.page.get_by_text("Engine: offline studio")).to_be_visible()
    app.page.get_by_role("tab", name="Try a sample").click()
    app.click_pill("Red mug on a studio sweep")
    expect(app.page.get_by_text("Photo in use:")).to_be_visible()
    prompt = "on a marble kitchen counter, soft morning light"
    app.replace(prompt, "PNG")
    expect(app.result_caption(prompt)).to_contain_text("PNG · Offline studio")
    expect(app.page.get_by_text("Made offline")).to_be_visible()
    assert app.drag_slider(0.3) == pytest.approx(30, abs=6)
    assert app.drag_slider(0.5) == pytest.approx(50, abs=6)  # through the middle of the mug
    app.screenshot("main-flow-offline.png", height=1650)  # docs/screenshot.png is a copy of one of these

    got = app.download()
    assert got.name == "sample-mug-on-a-marble-kitchen-counter-soft-morning.png"
    assert (got.image.format, got.image.size) == ("PNG", (1200, 900))
    # Asking for Novita explicitly without a key: a sentence that says what to do, nothing sent.
    app.act(app.page.get_by_role("radiogroup", name="Engine").get_by_text("Novita (photographic scenes)").click)
    expect(app.page.locator('[data-testid="stAlertContentWarning"]')).to_contain_text("no API key")
    app.press_replace()
    expect(app.error_box()).to_contain_text(re.compile(r"No Novita API key", re.I))
    assert stub.requests == []  # nothing left the server
    # From the browser, only Streamlit's favicon font was asked of a third party (juxtapose is served locally).
    assert {urlsplit(u).hostname for u in app.blocked} <= {"fonts.gstatic.com"}, app.blocked
