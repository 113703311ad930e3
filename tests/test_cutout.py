"""The transparent cut-out, as a person asks for it on each page: made on this server whatever engine the
sidebar shows (a Novita key is set in every test here, and the stand-in must hear nothing), PNG or WEBP with
real transparency, no prompt needed, JPEG refused with a sentence; it joins history like any result."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from components.backgrounds import TRANSPARENT
from components.inputs import NO_TRANSPARENT_JPEG
from services import engines
from tests.conftest import photo_bytes
from tests.test_batch import labels, photos, run_batch


def alpha_of(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.mode == "RGBA", image.mode
    return np.asarray(image.getchannel("A"))


def cut_out_on_main_page(at: AppTest, fmt: str, prompt: str = "") -> AppTest:
    at.file_uploader(key="upload").set_value(("mug.jpg", photo_bytes(), "image/jpeg")).run()
    at.text_area(key="prompt").input(prompt).run()  # typed first: the box is disabled, its text kept, once chosen
    at.radio(key="background").set_value(TRANSPARENT)
    at.radio(key="format").set_value(fmt)
    at.button(key="replace.run").click()
    return at.run()


def test_the_background_choice_is_offered_with_the_stable_labels(app):
    choice = app.radio(key="background")
    assert choice.label == "Background"
    assert list(choice.options) == ["New background", "Transparent (subject only)", "Plain colour",
                                    "My own background photo", "Blurred original"]
    assert choice.value == "New background"
    assert app.text_area(key="prompt").label == "Prompt" and app.radio(key="format").label == "Output format"


def test_a_cut_out_needs_no_prompt_sends_nothing_and_joins_history(app, novita_env):
    cut_out_on_main_page(app, "WEBP")
    assert not app.exception and not app.error and not app.warning
    history = list(app.session_state["history"])
    assert len(history) == 1
    item = history[0]
    assert (item.engine, item.image_type, item.cost) == (engines.CUTOUT, "webp", 0.0)
    alpha = alpha_of(item.result)
    assert alpha.shape == (480, 640)
    assert alpha[240, 320] == 255 and alpha[10, 10] == 0  # the red square kept, the grey around it gone
    assert item.download_name == "mug-transparent-cut-out.webp"
    assert "Download WEBP" in labels(app, "download_button")
    assert novita_env.requests == [] and app.session_state["account"].images == 0
    assert any("transparent cut-out, made on this server" in c.value for c in app.caption)


def test_jpeg_has_no_transparency_so_the_cut_out_says_so_and_keeps_everything(app, novita_env):
    cut_out_on_main_page(app, "JPEG", prompt="kept as typed")
    shown = [w.value.replace("\\", "") for w in app.warning]  # the page message is Markdown-escaped
    assert shown.count(NO_TRANSPARENT_JPEG) == 2  # under the format, and on the run
    assert len(app.session_state["history"]) == 0 and novita_env.requests == []
    assert app.text_area(key="prompt").value == "kept as typed"
    app.radio(key="format").set_value("PNG")
    app.button(key="replace.run").click().run()
    item = next(iter(app.session_state["history"]))
    assert item.image_type == "png" and alpha_of(item.result).min() == 0


def test_batch_cuts_out_every_photo_without_a_prompt(app, novita_env):
    app.switch_page("views/batch.py").run()
    app.radio(key="batch.background").set_value(TRANSPARENT)
    run_batch(app, photos(2), prompt=None)
    assert not app.exception and not app.error
    history = list(app.session_state["history"])
    assert len(history) == 2 and all(i.engine == engines.CUTOUT for i in history)
    assert all(alpha_of(i.result).min() == 0 for i in history)
    assert "Download all (ZIP)" in labels(app, "download_button")
    assert novita_env.requests == []


def test_variants_makes_one_cut_out_whatever_the_ideas(app, novita_env):
    app.switch_page("views/variants.py").run()
    app.file_uploader(key="upload").set_value(("mug.jpg", photo_bytes(), "image/jpeg")).run()
    app.radio(key="variants.background").set_value(TRANSPARENT)
    app.text_input(key="variants.prompt0").input("in a warehouse")
    app.text_input(key="variants.prompt1").input("on a beach")
    app.button(key="variants.start").click().run()
    assert not app.exception and not app.error
    history = list(app.session_state["history"])
    assert len(history) == 1 and history[0].engine == engines.CUTOUT
    assert novita_env.requests == []
