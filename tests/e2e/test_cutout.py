"""Real photos in a real browser: a transparent cut-out downloads as a PNG with alpha and sends nothing,
and the offline studio puts a real photo's subject on a new backdrop (the README's picture comes from it)."""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image
from skimage import data

from tests.e2e.conftest import expect, require_assets

require_assets()


def real_jpeg(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def choose_radio(app, group_name: str, label: str) -> None:
    """Click `label` in the radio group and wait for the rerun. On a loaded machine a click that lands while
    the group is being drawn again can be lost, as a person's can; like a person, click again (at most twice
    more) until it shows as chosen."""
    group = app.page.get_by_role("radiogroup", name=group_name)
    radio = group.get_by_role("radio", name=re.compile(rf"^{re.escape(label)}"))
    for _ in range(3):
        before = app.runs()
        group.get_by_text(label, exact=True).click()
        try:
            expect(radio).to_be_checked(timeout=5_000)
        except AssertionError:
            continue  # the click was lost: no run started for it
        app.settle(after=before)
        break
    expect(radio).to_be_checked()


def choose_background(app, label: str) -> None:
    choose_radio(app, "Background", label)


def test_a_transparent_cut_out_downloads_as_png_with_alpha_and_sends_nothing(studio, app_novita, stub):
    app = studio(app_novita)  # a key is set: Automatic would send to Novita, the cut-out never does
    app.upload("astronaut.jpg", real_jpeg(data.astronaut()))
    choose_background(app, "Transparent (subject only)")
    expect(app.page.get_by_text("Engine: transparent cut-out")).to_be_visible()
    app.choose_format("JPEG")
    expect(app.page.locator('[data-testid="stAlertContentWarning"]')).to_contain_text("JPEG has no transparency")
    app.choose_format("PNG")
    app.press_replace()  # with the Prompt left empty
    expect(app.result_download("PNG")).to_be_visible()
    expect(app.page.locator('[data-testid="stCaptionContainer"]', has_text="PNG · Transparent cut-out")).to_be_visible()
    app.wait_for_slider()

    got = app.download()
    assert got.name == "astronaut-transparent-cut-out.png"
    assert (got.image.format, got.image.mode, got.image.size) == ("PNG", "RGBA", (512, 512))
    alpha = np.asarray(got.image.getchannel("A"))
    assert alpha[200, 256] == 255  # the face
    assert alpha[60, 330] == 0  # the grey wall beside her head
    assert 0.3 < (alpha > 127).mean() < 0.8
    assert stub.requests == []
    app.check()


def test_the_offline_studio_on_a_real_photo(studio, app_offline, stub):
    app = studio(app_offline)
    app.upload("motorcycle.jpg", real_jpeg(data.stereo_motorcycle()[0]))
    prompt = "in a warehouse"
    app.replace(prompt, "PNG")
    expect(app.result_caption(prompt)).to_contain_text("PNG · Offline studio")
    expect(app.page.get_by_text("Made offline")).to_be_visible()
    app.screenshot("main-flow-offline-real-photo.png", height=1750)  # docs/screenshot.png is a copy of it
    got = app.download()
    assert (got.image.format, got.image.size) == ("PNG", (741, 500))
    assert stub.requests == []
