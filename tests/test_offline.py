"""services.offline and services.backdrops: the cut-out's quality floor, the output contract, the backdrop's
palette. The quality floor comes from bench/offline_eval.py's real-photo composites (quick set); the other
photos are scikit-image's or generated here."""

from __future__ import annotations

import io
import re
import threading

import cv2
import numpy as np
import pytest
from PIL import Image

from skimage import data

from bench import offline_eval, real_photos
from components import messages
from services import backdrops, offline, subject_model

# The real-photo composites' floors: the subject model meets them (mean 0.98, worst 0.94 when written);
# border-seeded GrabCut does not (see `python -m bench.offline_eval --quick --grabcut`).
MEAN_FLOOR, WORST_FLOOR = 0.95, 0.85


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def load(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def product_shot(size: tuple[int, int] = (320, 240)) -> tuple[Image.Image, np.ndarray]:
    """A red bottle-like shape on an off-white backdrop, and its true mask."""
    w, h = size
    truth = np.zeros((h, w), np.uint8)
    cv2.ellipse(truth, (w // 2, h // 2), (w // 6, h // 3), 0, 0, 360, 1, -1)
    photo = np.full((h, w, 3), 240, np.uint8)
    photo[truth == 1] = (180, 30, 40)
    return Image.fromarray(photo), truth.astype(bool)


def hue_of(image: Image.Image) -> float:
    """Mean hue in degrees, weighted by saturation (a circular mean, so red near 0/360 averages right)."""
    hsv = np.asarray(image.convert("HSV"), np.float64)
    angle, weight = hsv[..., 0] / 255 * 2 * np.pi, hsv[..., 1]
    mean = np.arctan2((np.sin(angle) * weight).sum(), (np.cos(angle) * weight).sum())
    return float(np.degrees(mean) % 360)


def saturation_of(image: Image.Image) -> float:
    return float(np.asarray(image.convert("HSV"))[..., 1].mean() / 255)


# ---------------------------------------------------------------- quality floor


@pytest.fixture(scope="module")
def composite_scores() -> dict:
    return offline_eval.composites(quick=True)


@pytest.mark.needs_subject_model
def test_cut_out_keeps_its_floor_on_real_photo_composites(composite_scores):
    assert composite_scores["mean"] >= MEAN_FLOOR, composite_scores
    assert composite_scores["worst"] >= WORST_FLOOR, composite_scores


def test_floors_are_the_aims():
    assert (MEAN_FLOOR, WORST_FLOOR) == (offline_eval.MEAN_AIM, offline_eval.WORST_AIM)


# ---------------------------------------------------------------- the subject model


@pytest.fixture
def model_file():
    """Point the engine at another model file for one test, then back at the installed one."""
    yield subject_model.use
    subject_model.use(subject_model.default_path())


@pytest.mark.needs_subject_model
def test_the_model_arrives_with_an_installed_wheel_and_loads_once():
    path = subject_model.default_path()
    assert path is not None and path.name == "u2netp.onnx" and "site-packages" in str(path)
    assert subject_model.shared() is subject_model.shared() is not None


def test_a_missing_model_falls_back_to_grabcut(model_file, tmp_path):
    photo, truth = product_shot()
    for missing in (tmp_path / "no-such.onnx", None):
        model_file(missing)
        assert subject_model.shared() is None
        assert offline_eval.iou(np.asarray(offline.cut_out(photo)) >= 128, truth) > 0.95


def test_a_photo_with_no_subject_is_kept_whole():
    rng = np.random.default_rng(3)
    flat = np.clip(rng.normal(128, 3, (240, 320, 3)), 0, 255).astype(np.uint8)
    assert (np.asarray(offline.cut_out(Image.fromarray(flat))) >= 128).mean() > 0.99


@pytest.mark.needs_subject_model
def test_a_cast_shadow_is_not_part_of_the_subject():
    case = ("coat", "grass", "horse", True)
    photo, truth = real_photos.composite(case, (480, 360), seed=11)
    background, _ = real_photos.composite(("coat", "grass", "horse", False), (480, 360), seed=11)
    shadow = (np.abs(photo.astype(int) - background.astype(int)).mean(2) > 25) & ~cv2.dilate(
        truth.astype(np.uint8), np.ones((9, 9))).astype(bool)
    assert shadow.sum() > 2000  # the case does cast a visible shadow
    alpha = np.asarray(offline.cut_out(Image.fromarray(photo)))
    assert (alpha[shadow] < 128).mean() > 0.97
    assert offline_eval.iou(alpha >= 128, truth) > 0.95


@pytest.mark.needs_subject_model
def test_a_close_up_that_fills_the_frame_keeps_the_whole_subject():
    cat = data.chelsea()  # the cat's face fills the frame but for a strip of background on the right
    alpha = np.asarray(offline.cut_out(Image.fromarray(cat))) >= 128
    assert alpha[60:, 40:300].mean() > 0.8  # the face and chest; GrabCut kept the eyes and nose, 0.28 of it
    assert alpha[:, 400:].mean() < 0.5


def test_concurrent_cut_outs_wait_their_turn_and_agree():
    photos = [Image.fromarray(real_photos.composite(("fur", "brick", "horse", False), (320, 240), seed=s)[0])
              for s in range(3)]
    alone = [np.asarray(offline.cut_out(p)) for p in photos]
    together: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i: together.update({i: np.asarray(offline.cut_out(photos[i]))}))
               for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(alone[i], together[i]) for i in range(3))


# ---------------------------------------------------------------- replace_background contract


@pytest.mark.parametrize(("image_type", "pil_format"), [("png", "PNG"), ("webp", "WEBP"), ("jpeg", "JPEG")])
def test_output_has_the_input_size_and_the_asked_format(image_type, pil_format):
    photo, _ = product_shot((300, 200))
    result = load(offline.replace_background(encoded(photo, "JPEG"), "studio", image_type))
    assert (result.format, result.size) == (pil_format, (300, 200))


def test_same_prompt_gives_the_same_bytes_and_another_prompt_other_bytes():
    data = encoded(product_shot()[0])
    first = offline.replace_background(data, "On a marble counter, soft light", "png")
    again = offline.replace_background(data, "on a marble counter  soft light!", "png")
    other = offline.replace_background(data, "on a marble counter, hard light", "png")
    assert first == again
    assert first != other


def test_seed_is_stable_across_processes():
    # a literal, so a switch to Python's per-process salted hash() would fail here
    assert backdrops.seed_of("  Sunset, BEACH ") == backdrops.seed_of("sunset beach") == 10260447278373488640


def test_undecodable_bytes_raise_a_value_error_with_a_sentence():
    for junk in (b"", b"definitely not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 40):
        with pytest.raises(ValueError) as caught:
            offline.replace_background(junk, "beach")
        assert re.fullmatch(r"\w+ .*\.", messages.describe(caught.value, owner_key=False)[0])


# ---------------------------------------------------------------- cut-out


def test_a_meaningful_alpha_channel_is_the_mask():
    photo, truth = product_shot()
    alpha = np.where(truth, 255, 0).astype(np.uint8)
    alpha[10:20, 10:20] = 128  # a soft patch that a segmentation would never produce
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.fromarray(alpha))
    assert np.array_equal(np.asarray(offline.cut_out(rgba)), alpha)
    result = np.asarray(load(offline.replace_background(encoded(rgba), "night city")))
    assert np.array_equal(result[truth], np.asarray(photo)[truth])  # the subject's own pixels, untouched


def test_an_all_opaque_alpha_channel_is_ignored():
    photo, truth = product_shot()
    mask = np.asarray(offline.cut_out(photo.convert("RGBA"))) >= 128
    assert offline_eval.iou(mask, truth) > 0.95


def test_cut_out_is_an_l_mask_of_the_image_size():
    photo, _ = product_shot((257, 131))
    mask = offline.cut_out(photo)
    assert (mask.mode, mask.size) == ("L", (257, 131))


def test_the_edge_is_feathered_not_hard():
    photo, truth = offline_eval.make_scene("plain", 1, (640, 480), seed=5)
    alpha = np.asarray(offline.cut_out(Image.fromarray(photo)))
    ring = cv2.dilate(truth.astype(np.uint8), np.ones((7, 7))) > cv2.erode(truth.astype(np.uint8), np.ones((7, 7)))
    soft = (alpha[ring] > 0) & (alpha[ring] < 255)
    assert soft.mean() > 0.3  # most of the outline steps through intermediate values
    assert (alpha[~ring] % 255 == 0).mean() > 0.98  # while inside and outside stay solid


# ---------------------------------------------------------------- backdrop


@pytest.fixture(scope="module")
def palettes() -> dict[str, Image.Image]:
    prompts = ("sunset", "forest", "snow", "qwerty zxcvb", "", "blue", "dark", "bright")
    return {p: backdrops.render_backdrop((240, 180), p) for p in prompts}


def test_scene_words_set_the_palette(palettes):
    sunset, forest, snow = (np.asarray(palettes[p], np.float64).mean((0, 1)) for p in ("sunset", "forest", "snow"))
    assert hue_of(palettes["sunset"]) < 50 or hue_of(palettes["sunset"]) > 330  # reds and oranges
    assert 70 < hue_of(palettes["forest"]) < 160  # greens
    assert 180 < hue_of(palettes["snow"]) < 250  # cold blues
    assert sunset[0] > sunset[2] and forest[1] > max(forest[0], forest[2]) and snow[2] > snow[0]
    assert snow.mean() > sunset.mean() > forest.mean()


def test_unknown_words_give_a_neutral_studio(palettes):
    for prompt in ("qwerty zxcvb", ""):
        assert saturation_of(palettes[prompt]) < 0.08
        assert 80 < np.asarray(palettes[prompt]).mean() < 230


def test_colour_names_and_moods_tint_the_backdrop(palettes):
    blue = np.asarray(palettes["blue"], np.float64).mean((0, 1))
    assert blue[2] > blue[0] + 60
    assert np.asarray(palettes["dark"]).mean() < np.asarray(palettes[""]).mean() - 60
    assert np.asarray(palettes["bright"]).mean() > np.asarray(palettes[""]).mean()


def test_backdrop_is_rgb_of_the_asked_size_and_has_gentle_grain():
    backdrop = backdrops.render_backdrop((333, 222), "pastel studio")
    assert (backdrop.mode, backdrop.size) == ("RGB", (333, 222))
    row = np.asarray(backdrop, np.float64)[111, 100:140, 1]
    assert 0.3 < np.abs(np.diff(row)).mean() < 8  # dithered, so no banding, but no visible noise either


def test_contact_shadow_sits_under_the_subject():
    def backdrop_with_subject_at(x: int) -> np.ndarray:
        mask = np.zeros((240, 320), np.uint8)
        cv2.ellipse(mask, (x, 140), (30, 70), 0, 0, 360, 255, -1)  # base at y = 210, above the bottom edge
        return np.asarray(backdrops.render_backdrop((320, 240), "studio", Image.fromarray(mask)), np.float64).mean(2)

    left, right = backdrop_with_subject_at(90), backdrop_with_subject_at(230)
    beside_left_base = np.s_[204:216, 48:58]
    assert left[beside_left_base].mean() < right[beside_left_base].mean() - 8  # the shadow follows the subject
    shadow = cv2.blur((left - right)[150:, 48:58].mean(1)[:, None], (1, 5)).ravel()
    assert abs(150 + int(np.argmin(shadow)) - 210) <= 6  # darkest at the base: it touches, not floats
