"""services.offline and services.backdrops: the cut-out's quality floor, the output contract, the backdrop's
palette. Every photo is generated here; the quality floor comes from bench/offline_eval.py's quick set."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from bench import offline_eval
from services import backdrops, offline

# Floors a little under what the quick evaluation measures (0.99 for every kind), at or above the aims
# (0.95 / 0.90 / 0.80); no single image of the set may fall under WORST_FLOOR either.
IOU_FLOORS = {"plain": 0.97, "gradient": 0.95, "textured": 0.90}
WORST_FLOOR = 0.90


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
def quick_figures() -> dict:
    return offline_eval.evaluate(quick=True, timed=False)


@pytest.mark.parametrize("kind", list(IOU_FLOORS))
def test_cut_out_keeps_its_quality_floor(quick_figures, kind):
    assert quick_figures["iou"][kind] >= IOU_FLOORS[kind], quick_figures
    assert quick_figures["worst"][kind] >= WORST_FLOOR, quick_figures


def test_floors_are_at_or_above_the_aims():
    assert all(IOU_FLOORS[kind] >= aim for kind, aim in offline_eval.AIMS.items())


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
        with pytest.raises(ValueError, match=r"\w+ .*\."):
            offline.replace_background(junk, "beach")


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
