"""The touch-up editor's reading of the canvas: Fabric.js paths become strokes in the photo's pixels."""

import math

import numpy as np
import pytest

from components import touchup as editor
from services import touchup

KEEP, REMOVE = editor.BRUSHES["Keep"], editor.BRUSHES["Remove"]


def path(points, stroke=REMOVE, width=20, **placed):
    """A freehand path as the canvas hands it back: M, Q…, L in canvas pixels, centred on its box."""
    (x0, y0), *rest = points
    commands = [["M", x0, y0]] + [["Q", x, y, x, y] for x, y in rest[:-1]] + [["L", *rest[-1]]]
    xs, ys = [x for x, _ in points], [y for _, y in points]
    shape = {"type": "Path", "stroke": stroke, "strokeWidth": width, "path": commands, "originX": "center",
             "originY": "center", "left": (min(xs) + max(xs)) / 2, "top": (min(ys) + max(ys)) / 2,
             "scaleX": 1, "scaleY": 1, "angle": 0}
    shape.update(placed)
    return shape


def test_a_stroke_just_drawn_lands_where_it_was_drawn_scaled_to_the_photo():
    drawing = {"objects": [path([(50, 50), (100, 80), (150, 120)], REMOVE, 20),
                           path([(10, 300), (30, 310)], KEEP, 8)]}
    strokes = editor.from_canvas(drawing, (340, 340), (1700, 1700))  # the photo is five times the canvas
    assert [s.keep for s in strokes] == [False, True]
    assert strokes[0].width == pytest.approx(100)
    assert strokes[0].points[0] == pytest.approx((250, 250)) and strokes[0].points[-1] == pytest.approx((750, 600))
    assert strokes[1].points[-1] == pytest.approx((150, 1550)) and strokes[1].width == pytest.approx(40)


def test_a_stroke_moved_scaled_and_turned_in_the_canvas_follows_its_placement():
    drawn = path([(0, 0), (100, 0)], REMOVE, 10, left=200, top=100, scaleX=2, scaleY=2, angle=90)
    (stroke,) = editor.from_canvas({"objects": [drawn]}, (400, 400), (400, 400))
    ends = [stroke.points[0], stroke.points[-1]]
    assert ends[0] == pytest.approx((200, 0), abs=1e-6) and ends[1] == pytest.approx((200, 200), abs=1e-6)
    assert stroke.width == pytest.approx(20)


@pytest.mark.parametrize("shape", [
    {"type": "rect", "left": 1, "top": 1},
    path([(1, 1), (2, 2)], stroke="#000000"),  # not one of the two brushes
    {"type": "Path", "stroke": REMOVE, "path": "M 1 1"},
    {"type": "Path", "stroke": REMOVE, "path": [["M", "x", None]]},
    {"type": "Path", "stroke": REMOVE, "path": [["M", math.nan, math.inf]]},
    "not a shape",
])
def test_what_is_not_a_brush_stroke_is_left_out(shape):
    assert editor.from_canvas({"objects": [shape]}, (100, 100), (100, 100)) == []


def test_nothing_drawn_is_no_strokes():
    assert editor.from_canvas(None, (100, 100), (100, 100)) == []
    assert editor.from_canvas({"objects": []}, (100, 100), (100, 100)) == []


def test_strokes_outside_the_photo_are_clipped_by_the_service():
    drawn = path([(-500, -500), (900, 900)], KEEP, 10)
    strokes = touchup.checked(editor.from_canvas({"objects": [drawn]}, (100, 100), (200, 100)), (200, 100))
    xs = [x for x, _ in strokes[0].points]
    ys = [y for _, y in strokes[0].points]
    assert min(xs) >= 0 and max(xs) <= 199 and min(ys) >= 0 and max(ys) <= 99


def test_the_overlay_dims_what_the_cut_out_removes():
    from PIL import Image

    photo = Image.new("RGB", (40, 20), (200, 200, 200))
    alpha = np.zeros((20, 40), np.uint8)
    alpha[:, :20] = 255
    shown = np.asarray(editor.overlay(photo, alpha, (40, 20)), dtype=int)
    assert tuple(shown[10, 5]) == (200, 200, 200)
    assert shown[10, 35].mean() < 200 * editor.DIM + 30


def test_fit_keeps_the_proportions_and_the_long_side():
    assert editor.fit((4000, 3000), 340) == (340, 255)
    assert editor.fit((1000, 2000), 340) == (170, 340)
