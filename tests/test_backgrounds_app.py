"""The backgrounds people ask for most, through the pages with no key: plain colour, their own backdrop photo,
the original blurred, and the framings; what names say, what the prompt box does, and Batch's ZIP."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from components.backgrounds import BLURRED, OWN, PLAIN
from components.messages import note_sentences
from tests.conftest import ROOT, photo_bytes
from tests.hostile_files import big_png
from tests.test_bad_input_matrix import bomb_png
from tests.test_batch import photos, uploads
from tests.test_edit_app import only_item


@pytest.fixture
def at(monkeypatch, tmp_path) -> AppTest:
    for name in ("NOVITA_API_KEY", "NOVITA_BASE_URL", "APP_PASSWORD", "HISTORY_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HISTORY_STORE_DIR", str(tmp_path / "history"))
    st.cache_resource.clear()
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.run()
    assert not app.exception
    return app


def real_photo(size=(640, 480)) -> bytes:
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize(size).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def backdrop_photo(size=(300, 200)) -> bytes:
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.rocket()).resize(size).save(buffer, "PNG")
    return buffer.getvalue()


def choose(at: AppTest, choice: str, page: str = "replace", key: str = "background") -> AppTest:
    at.radio(key=key).set_value(choice)
    return at.run()


def give_photo(at: AppTest, data: bytes | None = None, name="astronaut.jpg") -> AppTest:
    at.file_uploader(key="upload").set_value((name, data or real_photo(), "image/jpeg"))
    return at.run()


def press(at: AppTest, fmt="PNG") -> AppTest:
    at.radio(key="format").set_value(fmt)
    at.button(key="replace.run").click()
    return at.run()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def use_sample(at: AppTest, name="Red mug on a studio sweep") -> AppTest:
    at.pills(key="sample").set_value(name)
    return at.run()


def test_plain_white_square_needs_no_prompt_and_is_named_for_what_it_is(at):
    use_sample(at)
    at.text_area(key="prompt").input("in a warehouse").run()
    choose(at, PLAIN)
    assert at.text_area(key="prompt").disabled and at.text_area(key="prompt").value == "in a warehouse"
    assert any("No prompt needed" in str(c.value) for c in at.caption)
    assert at.color_picker(key="replace.colour").value.upper() == "#FFFFFF"
    at.radio(key="replace.framing").set_value("Square 1:1").run()
    press(at)
    assert not at.exception and not at.error
    item = only_item(at)
    assert item.engine == "composite" and item.prompt == "white square"
    assert item.download_name == "sample-mug-white-square.png"
    image = pixels(item.result)
    assert image.shape[0] == image.shape[1]
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    assert (border == 255).all()  # a subject standing free: the margin all round is the colour exactly
    assert Image.open(io.BytesIO(item.before_preview)).size[0] == Image.open(io.BytesIO(item.after_preview)).size[0]
    assert len(at.get("iframe")) == 1  # the slider, its two sides in the same frame
    choose(at, "New background")
    assert not at.text_area(key="prompt").disabled and at.text_area(key="prompt").value == "in a warehouse"


def test_a_swatch_sets_the_colour(at):
    give_photo(at)
    choose(at, PLAIN)
    at.pills(key="replace.swatch").set_value("Black").run()
    assert at.color_picker(key="replace.colour").value.upper() == "#000000"
    press(at, "JPEG")
    item = only_item(at)
    assert item.prompt == "black" and item.download_name == "astronaut-black.jpg"
    assert pixels(item.result)[0, 0].max() < 8  # a corner of the old background: black now (JPEG)


def test_own_backdrop_asks_for_its_photo_then_covers_the_frame(at):
    give_photo(at)
    choose(at, OWN)
    press(at)
    assert "Add a background photo first" in " ".join(str(w.value) for w in at.warning)
    assert not list(at.session_state["history"])
    at.file_uploader(key="replace.backdrop").set_value(("rocket.png", backdrop_photo(), "image/png")).run()
    assert any("Background photo: rocket.png, 300 × 200 px" in str(c.value) for c in at.caption)
    press(at, "JPEG")
    assert not at.exception and not at.error
    item = only_item(at)
    assert item.download_name == "astronaut-own-backdrop.jpg"
    assert "enlarged" in " ".join(note_sentences(item.notices))  # a 300 px backdrop behind a 640 px frame


@pytest.mark.parametrize("name, make", [("bomb.png", lambda: bomb_png(40000, 40000)),
                                        ("giant-16bit.png", lambda: big_png("I;16", (9000, 9000)))])
def test_a_hostile_backdrop_is_refused_with_a_sentence_and_the_photo_stays(at, name, make):
    give_photo(at)
    choose(at, OWN)
    at.file_uploader(key="replace.backdrop").set_value((name, make(), "image/png")).run()
    assert not at.exception
    said = " ".join(str(e.value) for e in at.error)
    assert said and "Traceback" not in said, said
    assert at.session_state["photo"] is not None
    press(at)
    assert not list(at.session_state["history"])  # nothing is made without a usable backdrop


def test_blurred_original_keeps_the_photo_frame(at):
    give_photo(at)
    choose(at, BLURRED)
    assert not [c for c in at.checkbox if c.key == "replace.shadow"]  # nothing new to stand on
    press(at, "WEBP")
    item = only_item(at)
    assert item.prompt == "blurred original" and Image.open(io.BytesIO(item.result)).size == (640, 480)


def test_batch_of_five_white_squares_zips_with_a_manifest_naming_them(at):
    at.switch_page("views/batch.py").run()
    at.file_uploader(key="batch.upload").set_value(uploads(photos(5))).run()
    choose(at, PLAIN, key="batch.background")
    at.radio(key="batch.framing").set_value("Square 1:1").run()
    at.button(key="batch.start").click().run()
    assert not at.exception and not at.error
    history = list(at.session_state["history"])
    assert len(history) == 5 and all(item.prompt == "white square" for item in history)
    run = at.session_state["batch.page"].run
    from services import export

    with zipfile.ZipFile(io.BytesIO(export.zip_results(run.rows(str)))) as archive:
        names = [n for n in archive.namelist() if n != "manifest.csv"]
        assert len(names) == 5 and all(n.endswith("-white-square.png") for n in names)
        for name in names:
            w, h = Image.open(io.BytesIO(archive.read(name))).size
            assert w == h
        manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert all(row["prompt"] == "white square" for row in manifest)


def test_variants_make_one_result_for_a_background_with_nothing_to_vary(at):
    at.switch_page("views/variants.py").run()
    at.file_uploader(key="upload").set_value(("mug.jpg", photo_bytes(), "image/jpeg")).run()
    choose(at, PLAIN, key="variants.background")
    at.button(key="variants.start").click().run()
    assert not at.exception and not at.error
    assert [item.prompt for item in at.session_state["history"]] == ["white"]


def test_without_the_subject_model_the_page_says_cut_outs_are_rougher_and_how_to_get_better(at, monkeypatch):
    """As on Python 3.13, where the model's wheel does not install: GrabCut cuts out, and the person is told."""
    from services import masks, subject_model

    installed = subject_model.default_path()
    monkeypatch.setattr(subject_model, "default_path", lambda: None)
    subject_model.use(None)
    try:
        at.run()
        assert any("deploy the app on Python 3.12" in str(c.value) for c in at.sidebar.caption)
        use_sample(at)
        choose(at, PLAIN)
        press(at)
        assert not at.exception and not at.error
        assert any("rougher" in str(c.value) for c in at.caption)
    finally:
        subject_model.use(installed)  # the model again for the tests after this one
        masks.clear()
