"""Touch up in a real browser: a Remove stroke painted with the mouse across a stray part of the cut-out,
Apply, and the downloaded cut-out no longer holds that part; the old result stays, and nothing is sent."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw
from skimage import data

from tests.e2e.conftest import expect, require_assets
from tests.e2e.test_cutout import choose_background

require_assets()

STRAY = (380, 10, 500, 130)  # a bright disk on the wall behind her: the subject model takes it for subject


def astronaut_with_a_stray_disk() -> bytes:
    picture = Image.fromarray(data.astronaut())
    draw = ImageDraw.Draw(picture)
    draw.ellipse(STRAY, fill=(250, 200, 20))
    draw.rectangle((420, 50, 460, 90), fill=(20, 20, 160))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def alpha_of(download) -> np.ndarray:
    return np.asarray(download.image.getchannel("A"))


def test_a_remove_stroke_across_a_stray_part_takes_all_of_it_out(studio, app_offline, stub):
    app = studio(app_offline)
    app.upload("astronaut.jpg", astronaut_with_a_stray_disk())
    choose_background(app, "Transparent (subject only)")
    app.press_replace()
    app.wait_for_slider()
    before = alpha_of(app.download())
    assert before[70, 440] == 255 and before[200, 256] == 255  # the stray disk was cut out with her face

    app.act(app.page.get_by_role("button", name="Touch up").click)
    canvas = app.page.locator("canvas").last
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    scale = box["width"] / 512  # the canvas shows the whole photo

    def stroke(x0, x1, y):
        app.page.mouse.move(box["x"] + x0 * scale, box["y"] + y * scale)
        app.page.mouse.down()
        app.page.mouse.move(box["x"] + x1 * scale, box["y"] + y * scale, steps=12)
        app.act(app.page.mouse.up)  # the canvas hands its strokes back on mouse up

    stroke(385, 495, 60)  # across the disk's upper half, from its left edge to its right
    stroke(200, 320, 200)  # a slip across her face…
    undo = app.page.locator(".st-key-touchup-undo").get_by_role("button", name="Undo")
    app.act(undo.click)  # …taken back: the canvas starts again from the first stroke alone
    box = app.page.locator("canvas").last.bounding_box()
    apply = app.page.get_by_role("button", name="Apply")
    expect(apply).to_be_enabled()
    app.act(apply.click)
    expect(app.page.get_by_text("(touched up)").first).to_be_visible()

    got = app.download()
    assert got.name == "astronaut-transparent-cut-out-touched-up.png"
    after = alpha_of(got)
    disk = np.zeros_like(after, dtype=bool)
    yy, xx = np.mgrid[: after.shape[0], : after.shape[1]]
    disk[((xx - 440) / 55) ** 2 + ((yy - 70) / 55) ** 2 <= 1] = True
    painted = np.abs(yy - 60) <= 12
    assert (before[disk] > 127).mean() > 0.9
    assert (after[disk & ~painted] > 127).mean() < 0.05  # the whole disk, not only the painted band
    assert after[200, 256] == 255 and abs((after > 127).mean() - (before[~disk] > 127).sum() / after.size) < 0.02
    assert stub.requests == []
    expect(app.page.get_by_text("This session: 2 results in history")).to_be_visible()  # the old one stays
    app.check()
