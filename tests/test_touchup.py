"""services.touchup: Keep and Remove strokes on a subject cut-out. The strokes are hard constraints, a Remove
stroke drops the whole stray region it crosses, a Keep stroke brings a missed part back to its edges, and
strokes from a browser are bounded. The scene is drawn here: a red body with a limb on a textured blue-grey
ground, a green blob beside it; the "model's" layers miss the limb and take the blob."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from PIL import Image

from services import touchup
from services.masks import Layers
from services.touchup import Stroke, TouchUpError


def scene(scale: int = 1) -> dict:
    """The photo, its true subject, the model's layers, and where the limb and the blob are; `scale` enlarges
    the 240 x 180 scene (4: past the working size, so the strokes act on a reduced copy)."""
    w, h = 240 * scale, 180 * scale
    rng = np.random.default_rng(5)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ground = np.stack([70 + 40 * xs / w, 90 + 30 * ys / h, 150 + 0 * xs], -1)
    ground += cv2.GaussianBlur(rng.normal(0, 12, (h, w)).astype(np.float32), (0, 0), 1.5 * scale)[..., None]
    body = np.zeros((h, w), np.uint8)
    cv2.circle(body, (90 * scale, 100 * scale), 45 * scale, 1, -1)
    limb = np.zeros((h, w), np.uint8)
    cv2.rectangle(limb, (120 * scale, 92 * scale), (205 * scale, 110 * scale), 1, -1)
    limb &= 1 - body
    blob = np.zeros((h, w), np.uint8)
    cv2.circle(blob, (200 * scale, 40 * scale), 20 * scale, 1, -1)
    photo = ground.copy()
    photo[(body | limb) > 0] = (200, 60, 40)
    photo[blob > 0] = (60, 190, 70)
    photo = np.clip(photo + rng.normal(0, 3, photo.shape), 0, 255).astype(np.uint8)
    model = cv2.GaussianBlur((body | blob).astype(np.float32) * 255, (0, 0), 1.0).astype(np.uint8)
    return {"photo": Image.fromarray(photo), "rgb": photo, "truth": (body | limb) > 0, "body": body > 0,
            "limb": limb > 0, "blob": blob > 0, "layers": Layers(photo.copy(), model), "scale": scale}


def disc(size: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.circle(mask, (round(centre[0]), round(centre[1])), int(radius), 1, -1)
    return mask > 0


def segment(size: tuple[int, int], start: tuple[float, float], end: tuple[float, float], width: float) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.line(mask, tuple(map(round, start)), tuple(map(round, end)), 1, max(1, int(width)))
    return mask > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero(a & b) / np.count_nonzero(a | b)


# ---------------------------------------------------------------- what the strokes do


def test_painted_pixels_are_hard_constraints():
    s = scene()
    size = s["photo"].size
    strokes = [
        Stroke(True, 12, ((30.0, 30.0), (60.0, 35.0))),  # Keep on plain background, far from the subject
        Stroke(False, 10, ((90.0, 100.0),)),  # a Remove dab in the middle of the body
        Stroke(False, 8, ((150.0, 160.0), (230.0, 170.0))),  # Remove where there was nothing
        Stroke(True, 6, ((85.0, 70.0), (95.0, 130.0))),  # a later Keep across the Remove dab: the later wins
    ]
    alpha = touchup.refine(s["photo"], s["layers"], strokes).alpha
    keep = segment(size, (30, 30), (60, 35), 10) | segment(size, (85, 70), (95, 130), 4)
    remove = (disc(size, (90, 100), 4) & ~segment(size, (85, 70), (95, 130), 8)) \
        | segment(size, (150, 160), (230, 170), 6)
    assert keep.sum() > 300 and remove.sum() > 200
    assert (alpha[keep] == 255).all()
    assert (alpha[remove] == 0).all()


def test_a_remove_stroke_across_part_of_a_stray_blob_removes_all_of_it():
    s = scene()
    before = s["layers"].alpha >= 128
    assert before[s["blob"]].mean() > 0.95  # the model took the blob
    stroke = Stroke(False, 6, ((194.0, 40.0), (206.0, 40.0)))  # 12 px of a 40 px blob
    alpha = touchup.refine(s["photo"], s["layers"], [stroke]).alpha
    assert np.count_nonzero(segment(s["photo"].size, (194, 40), (206, 40), 6)) < 0.2 * s["blob"].sum()
    assert np.count_nonzero(alpha[s["blob"]] >= 128) == 0
    assert iou(alpha >= 128, s["body"]) > 0.98  # the body is untouched


def test_a_remove_stroke_at_one_end_of_a_long_stray_streak_removes_all_of_it():
    s = scene()
    streak = np.zeros(s["body"].shape, np.uint8)
    cv2.rectangle(streak, (4, 8), (236, 22), 1, -1)  # along the top, the model's mistake end to end
    streak = streak > 0
    rgb = s["rgb"].copy()
    rgb[streak] = np.clip(rgb[streak].astype(int) + (60, -20, -60), 0, 255)  # a warmer stripe of the ground
    model = cv2.GaussianBlur((s["body"] | streak).astype(np.float32) * 255, (0, 0), 1.0).astype(np.uint8)
    stroke = Stroke(False, 6, ((8.0, 15.0), (20.0, 15.0)))  # its left end: the right end is 220 px away
    alpha = touchup.refine(Image.fromarray(rgb), Layers(rgb, model), [stroke]).alpha
    assert np.count_nonzero(alpha[streak] >= 128) == 0
    assert iou(alpha >= 128, s["body"]) > 0.98


def test_the_model_taking_something_bigger_than_the_subject_is_undone_by_a_stroke_on_each():
    s = scene()
    wrong = np.zeros(s["body"].shape, np.uint8)
    cv2.rectangle(wrong, (150, 20), (235, 175), 1, -1)  # a green panel, larger than the body, taken whole
    wrong = wrong > 0
    rgb = s["rgb"].copy()
    rgb[wrong] = (60, 190, 70)
    model = cv2.GaussianBlur((s["body"] | wrong).astype(np.float32) * 255, (0, 0), 1.0).astype(np.uint8)
    layers = Layers(rgb, model)
    remove = Stroke(False, 6, ((185.0, 95.0), (200.0, 100.0)))
    # a Remove stroke alone on the largest region does not drop it whole: it may be the subject
    alone = touchup.refine(Image.fromarray(rgb), layers, [remove]).alpha >= 128
    assert alone[wrong].mean() > 0.3
    # with a Keep stroke on the real subject, the panel goes, all of it
    both = touchup.refine(Image.fromarray(rgb), layers, [remove, Stroke(True, 6, ((90.0, 100.0),))]).alpha >= 128
    assert not both[wrong].any()
    assert iou(both, s["truth"] & ~wrong) > 0.97  # the body, and what shows of its limb, of the same red


def test_a_remove_stroke_on_a_stray_part_joined_to_the_subject_takes_the_part_off():
    s = scene()
    joined = s["blob"].copy()
    cv2.rectangle(joined.view(np.uint8), (125, 40), (185, 52), 1, -1)  # a green bridge to the body's edge
    joined &= ~s["body"]
    rgb = s["rgb"].copy()
    rgb[joined] = (60, 190, 70)
    model = cv2.GaussianBlur((s["body"] | joined).astype(np.float32) * 255, (0, 0), 1.0).astype(np.uint8)
    layers = Layers(rgb, model)
    stroke = Stroke(False, 6, ((192.0, 36.0), (205.0, 46.0)))
    alpha = touchup.refine(Image.fromarray(rgb), layers, [stroke]).alpha
    assert np.count_nonzero(alpha[joined] >= 128) < 0.03 * joined.sum()
    assert iou(alpha >= 128, s["body"]) > 0.97


@pytest.mark.parametrize("scale", [1, 4])
def test_a_keep_stroke_inside_a_missed_limb_brings_it_back_to_its_edges(scale):
    s = scene(scale)
    before = s["layers"].alpha >= 128
    assert not before[s["limb"]].any()
    # a short line in the middle of the limb: 10 px of its 85, a third of its thickness
    stroke = Stroke(True, 6 * scale, ((158.0 * scale, 101.0 * scale), (168.0 * scale, 101.0 * scale)))
    alpha = touchup.refine(s["photo"], s["layers"], [stroke]).alpha
    after = alpha >= 128
    inner = cv2.erode(s["limb"].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert after[inner].mean() > 0.97  # all of the limb, to its end
    ring = cv2.dilate(s["truth"].astype(np.uint8), np.ones((9 * scale, 9 * scale), np.uint8)).astype(bool) \
        & ~cv2.dilate(s["truth"].astype(np.uint8), np.ones((3 * scale, 3 * scale), np.uint8)).astype(bool)
    assert after[ring].mean() < 0.02  # and no further: the ground around it stays out
    assert iou(after, s["truth"] | s["blob"]) > 0.95


def test_pixels_far_from_the_strokes_keep_their_alpha():
    s = scene()
    alpha = touchup.refine(s["photo"], s["layers"], [Stroke(False, 6, ((194.0, 40.0), (206.0, 40.0)))]).alpha
    far = ~disc(s["photo"].size, (200, 40), 80)
    assert np.array_equal(alpha[far], s["layers"].alpha[far])


def test_the_subject_colours_are_made_again_for_the_new_edge():
    s = scene()
    # the model's subject: the photo itself (its edge still carries the ground's blue)
    made = touchup.refine(s["photo"], s["layers"], [Stroke(True, 6, ((158.0, 101.0), (168.0, 101.0)))])
    near_limb = cv2.dilate(s["limb"].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~s["body"]
    edge = (made.alpha > 10) & (made.alpha < 245) & near_limb
    assert np.count_nonzero(edge) > 50
    blue_before = s["rgb"][edge][:, 2].astype(float).mean()
    blue_after = made.subject[edge][:, 2].astype(float).mean()
    assert blue_after < blue_before - 20  # the ground's blue taken out of the limb's soft edge


# ---------------------------------------------------------------- the contract


def test_refine_changes_none_of_its_inputs_and_returns_new_layers():
    s = scene()
    photo, layers = s["photo"], s["layers"]
    pixels, subject, alpha = np.asarray(photo).copy(), layers.subject.copy(), layers.alpha.copy()
    strokes = (Stroke(False, 6, ((194.0, 40.0), (206.0, 40.0))), Stroke(True, 6, ((158.0, 101.0), (168.0, 101.0))))
    copy = tuple(strokes)
    made = touchup.refine(photo, layers, strokes)
    assert np.array_equal(np.asarray(photo), pixels) and photo.mode == "RGB"
    assert np.array_equal(layers.subject, subject) and np.array_equal(layers.alpha, alpha)
    assert strokes == copy
    assert isinstance(made, Layers) and made is not layers
    assert made.subject.shape == (180, 240, 3) and made.subject.dtype == np.uint8
    assert made.alpha.shape == (180, 240) and made.alpha.dtype == np.uint8
    assert not made.alpha.flags.writeable


def test_refine_takes_any_photo_mode_but_not_another_size():
    s = scene()
    stroke = [Stroke(False, 6, ((194.0, 40.0), (206.0, 40.0)))]
    rgba = touchup.refine(s["photo"].convert("RGBA"), s["layers"], stroke)
    assert np.array_equal(rgba.alpha, touchup.refine(s["photo"], s["layers"], stroke).alpha)
    with pytest.raises(ValueError, match="240x180"):
        touchup.refine(s["photo"].resize((120, 90)), s["layers"], stroke)


# ---------------------------------------------------------------- strokes are input


def kind_of(strokes, size=(240, 180)) -> str:
    with pytest.raises(TouchUpError) as raised:
        touchup.checked(strokes, size)
    assert isinstance(raised.value, ValueError)
    return raised.value.kind


def test_points_outside_the_photo_are_clipped_to_it():
    (stroke,) = touchup.checked([Stroke(True, 10, ((-500.0, 90.0), (1e9, -1e9), (120.5, 200.0)))], (240, 180))
    assert stroke.points == ((0.0, 90.0), (239.0, 0.0), (120.5, 179.0))
    s = scene()
    far = [Stroke(False, 30, ((-1e6, -1e6), (-1e6, 1e6))), Stroke(True, 30, ((1e7, 50.0),))]
    alpha = touchup.refine(s["photo"], s["layers"], far).alpha
    assert (alpha[:, :10] == 0).all() and (alpha[40:60, -10:] == 255).all()  # painted along the edges only


@pytest.mark.parametrize(("width", "expected"), [(1e9, touchup.MAX_WIDTH * 240), (0.0, 1.0), (-5.0, 1.0),
                                                 (7.5, 7.5)])
def test_widths_are_clamped(width, expected):
    (stroke,) = touchup.checked([Stroke(True, width, ((10.0, 10.0),))], (240, 180))
    assert stroke.width == pytest.approx(expected)
    (big,) = touchup.checked([Stroke(True, 0.0, ((10.0, 10.0),))], (4000, 3000))
    assert big.width == pytest.approx(touchup.MIN_WIDTH * 4000)


@pytest.mark.parametrize(("strokes", "kind"), [
    ([], "no_strokes"),
    ([Stroke(True, 5, ())], "empty_stroke"),
    ([Stroke(True, 5, ((float("nan"), 3.0),))], "not_a_number"),
    ([Stroke(True, 5, ((3.0, float("inf")),))], "not_a_number"),
    ([Stroke(True, float("nan"), ((3.0, 3.0),))], "not_a_number"),
    ([Stroke(True, float("-inf"), ((3.0, 3.0),))], "not_a_number"),
    ([Stroke(True, 5, (("a", 3.0),))], "not_a_number"),
    ([Stroke(True, 5, ((3.0,),))], "not_a_number"),
    ([((3.0, 3.0),)], "not_a_stroke"),
    ([Stroke(True, 5, ((3.0, 3.0),)), "keep"], "not_a_stroke"),
])
def test_absurd_strokes_are_refused_with_their_kind(strokes, kind):
    assert kind_of(strokes) == kind


def test_too_many_strokes_or_points_are_refused_without_reading_them_all():
    dab = Stroke(True, 5, ((3.0, 3.0),))
    assert len(touchup.checked([dab] * touchup.MAX_STROKES, (240, 180))) == touchup.MAX_STROKES
    assert kind_of([dab] * (touchup.MAX_STROKES + 1)) == "too_many_strokes"
    assert kind_of(itertools.repeat(dab)) == "too_many_strokes"  # an endless supply is cut short
    line = tuple((float(i % 200), 5.0) for i in range(touchup.MAX_POINTS))
    assert len(touchup.checked([Stroke(False, 5, line)], (240, 180))[0].points) == touchup.MAX_POINTS
    with pytest.raises(TouchUpError) as raised:
        touchup.checked([dab, Stroke(False, 5, line + ((1.0, 1.0),))], (240, 180))
    assert raised.value.kind == "too_many_points"
    assert raised.value.facts == {"stroke": 1, "limit": touchup.MAX_POINTS, "points": touchup.MAX_POINTS + 1}


def test_refine_checks_the_strokes_too():
    s = scene()
    with pytest.raises(TouchUpError) as raised:
        touchup.refine(s["photo"], s["layers"], [Stroke(True, 5, ((float("nan"), 1.0),))])
    assert raised.value.kind == "not_a_number" and raised.value.facts["stroke"] == 0
    with pytest.raises(TouchUpError):
        touchup.refine(s["photo"], s["layers"], [])
