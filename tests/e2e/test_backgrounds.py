"""The backgrounds people ask for most, in a real browser with no key: each choice on the main page from a
real photo to its download, and a Batch of white squares as one ZIP. Nothing reaches Novita."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import numpy as np
from PIL import Image
from skimage import data

from tests.e2e.conftest import expect, jpeg, require_assets
from tests.e2e.test_cutout import choose_background, choose_radio, real_jpeg

require_assets()


def choose_framing(app, label: str) -> None:
    choose_radio(app, "Framing", label)


def use_sample(app, name: str = "Red mug on a studio sweep") -> None:
    app.page.get_by_role("tab", name="Try a sample").click()
    app.click_pill(name)


def test_plain_colour_square_from_a_sample(studio, app_offline, stub):
    app = studio(app_offline)
    use_sample(app)
    choose_background(app, "Plain colour")
    expect(app.page.get_by_label("Prompt", exact=True)).to_be_disabled()
    expect(app.page.get_by_text("No prompt needed")).to_be_visible()
    choose_framing(app, "Square 1:1")
    app.press_replace()
    expect(app.result_download("PNG")).to_be_visible()
    before, after = app.slider_images()
    assert before["w"] == before["h"] and after["w"] == after["h"]  # both sides in the square frame
    app.screenshot("background-plain-square.png", height=1900)
    got = app.download()
    assert got.name == "sample-mug-white-square.png"
    image = np.asarray(got.image.convert("RGB"))
    assert image.shape[0] == image.shape[1]
    assert (np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]) == 255).all()
    assert stub.requests == []
    app.check()


def test_own_backdrop_photo(studio, app_offline, stub):
    app = studio(app_offline)
    app.upload("motorcycle.jpg", real_jpeg(data.stereo_motorcycle()[0]))
    choose_background(app, "My own background photo")
    backdrop = app.page.locator('[data-testid="stFileUploader"]').filter(has_text="Background photo")
    app.act(lambda: backdrop.locator('input[type="file"]').set_input_files(
        files=[{"name": "rocket.jpg", "mimeType": "image/jpeg", "buffer": real_jpeg(data.rocket())}]))
    expect(app.page.get_by_text("Background photo: rocket.jpg, 640 × 427 px")).to_be_visible()
    app.choose_format("JPEG")
    app.press_replace()
    expect(app.result_download("JPEG")).to_be_visible()
    app.screenshot("background-own-backdrop.png", height=1900)
    got = app.download()
    assert got.name == "motorcycle-own-backdrop.jpg" and got.image.format == "JPEG"
    assert got.image.size == (741, 500)
    assert stub.requests == []
    app.check()


def test_blurred_original(studio, app_offline, stub):
    app = studio(app_offline)
    app.upload("coffee.jpg", real_jpeg(data.coffee()))
    choose_background(app, "Blurred original")
    expect(app.page.get_by_role("checkbox", name="Soft shadow under the subject")).to_have_count(0)
    app.press_replace()
    expect(app.result_download("PNG")).to_be_visible()
    got = app.download()
    assert got.name == "coffee-blurred-original.png" and got.image.size == (600, 400)
    assert stub.requests == []
    app.check()


def test_transparent_cut_out_framed_portrait(studio, app_offline, stub):
    app = studio(app_offline)
    use_sample(app, "Potted plant")
    choose_background(app, "Transparent (subject only)")
    choose_framing(app, "Portrait 4:5")
    app.press_replace()
    got = app.download()
    assert got.name == "sample-plant-transparent-cut-out-portrait.png" and got.image.mode == "RGBA"
    w, h = got.image.size
    assert abs(w / h - 4 / 5) < 0.01
    alpha = np.asarray(got.image.getchannel("A"))
    assert alpha[0].max() == 0 and alpha[:, 0].max() == 0  # the margin is clear
    app.check()


def test_a_batch_of_white_squares_downloads_as_one_zip(studio, app_offline, stub):
    app = studio(app_offline)
    app.go_to("Batch")
    files = [{"name": f"photo{i}.jpg", "mimeType": "image/jpeg", "buffer": jpeg((480, 360), colour=(40 * i, 90, 160))}
             for i in range(1, 6)]
    app.act(lambda: app.page.set_input_files('input[type="file"]', files=files))
    choose_background(app, "Plain colour")
    choose_framing(app, "Square 1:1")
    app.page.get_by_role("button", name=re.compile("Replace all backgrounds")).click()
    expect(app.page.get_by_text(re.compile(r"^5 done · 0 failed"))).to_be_visible(timeout=60_000)
    app.settle(60_000)
    got = app.download(app.page.get_by_role("button", name="Download all (ZIP)"))
    with zipfile.ZipFile(io.BytesIO(got.data)) as archive:
        names = sorted(n for n in archive.namelist() if n != "manifest.csv")
        assert names == [f"photo{i}-white-square.png" for i in range(1, 6)]
        for name in names:
            w, h = Image.open(io.BytesIO(archive.read(name))).size
            assert w == h
        rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert [row["prompt"] for row in rows] == ["white square"] * 5
    assert stub.requests == []
    app.check()
