"""Touch up: paint what should stay and what should go, and the result is made again from the same photo.

Under a result made with the subject mask (the cut-out, a colour, a backdrop, the blurred original, the
offline studio, or Novita's scene with the subject laid back), **Touch up** opens an editor: the photo with
the removed part dimmed, and two brushes, Keep and Remove. **Apply** makes the result again through the
same run engine, with the strokes as hard constraints (`services.touchup.refine`); nothing is sent and
nothing is spent, and the old result stays in history.

The canvas is streamlit-drawable-canvas (Fabric.js): freehand strokes by mouse, pen or finger, each handed
back as a path. Undo and Reset start it again from the strokes to keep. What a result was made from (the
prepared photo, the background's recipe, Novita's scene before the subject was laid back) is kept for this
session's latest results only (`session.SOURCES`), in memory: after a reload, a result can be downloaded
but not touched up.
"""

from __future__ import annotations

import math

import numpy as np
import streamlit as st
from PIL import Image

from components import actions, run_view, session
from services import images, masks, runs, touchup, workers
from services.items import HistoryItem

CANVAS_EDGE = 340  # the canvas's long side: it fits a phone held upright (a 390 px screen shows 358 px)
LARGE_EDGE = 680  # with Larger canvas, for a desktop screen
BRUSHES = {"Keep": "rgba(30, 170, 80, 0.6)", "Remove": "rgba(220, 40, 40, 0.6)"}
SIZES = {"Small": 0.02, "Medium": 0.05, "Large": 0.1}  # brush diameters, shares of the canvas's long side
DIM = 0.35  # the removed part is shown at this brightness
# the canvas's state, created in session.init: the strokes it starts from, how many times it was started
# again (its key), and what it held at the last run
START_KEY, GENERATION_KEY, DRAWN_KEY = "touchup.start", "touchup.generation", "touchup.drawn"


def editor(item: HistoryItem, *, key: str) -> None:
    """The Touch up button under a result and, once pressed, the editor: brush, size, canvas, Apply."""
    from streamlit_drawable_canvas import st_canvas  # declares its component: only inside a running app

    made_from = session.source_of(item.id)
    if made_from is None:
        return
    page = session.page("touchup")
    if page.opened != item.id:
        st.button("Touch up", key=f"{key}.touchup.{item.id}", icon=":material/brush:", on_click=_open,
                  args=(item.id,), help="Paint what should stay and what should go; the result is made again. "
                                        "Nothing is sent and nothing is spent.")
        return
    st.markdown("**Touch up the cut-out**")
    st.caption("Paint over what should stay with **Keep**, and over what should go with **Remove**; a stroke "
               "across a stray part removes all of it. Then press **Apply**. Nothing is sent and nothing is "
               "spent.")
    brush = st.segmented_control("Brush", list(BRUSHES), key="touchup.brush", default="Remove")
    left, right = st.columns(2)
    size = left.segmented_control("Brush size", list(SIZES), key="touchup.size", default="Medium")
    large = right.toggle("Larger canvas", key="touchup.large", help="For a big screen; on a phone keep it off.")
    photo = made_from.prepared
    canvas_size = fit(photo.size, LARGE_EDGE if large else CANVAS_EDGE)
    background = _shown(item.id, made_from, canvas_size, runs.scope_of(session.account()))
    # Undo and Reset start the canvas again (a new key) from the strokes to keep: the canvas's own toolbar
    # has them too, but it shows only on hover, which a finger never does
    drawn = st_canvas(stroke_width=max(2, round(SIZES[size or "Medium"] * max(canvas_size))),
                      stroke_color=BRUSHES[brush or "Remove"], background_image=background,
                      width=canvas_size[0], height=canvas_size[1], drawing_mode="freedraw",
                      initial_drawing=st.session_state[START_KEY],
                      key=f"touchup.canvas.{item.id}.{canvas_size[0]}.{st.session_state[GENERATION_KEY]}")
    st.session_state[DRAWN_KEY] = drawn.json_data
    strokes = from_canvas(drawn.json_data, canvas_size, photo.size)
    running = actions.is_running("touchup")
    undo, reset = st.columns(2)
    undo.button("Undo", key="touchup.undo", icon=":material/undo:", disabled=running or not strokes,
                on_click=_restart, args=(True,), width="stretch", help="Take back the last stroke.")
    reset.button("Reset", key="touchup.reset", icon=":material/restart_alt:", disabled=running or not strokes,
                 on_click=_restart, args=(False,), width="stretch", help="Take back every stroke.")
    apply, close = st.columns(2)
    apply.button("Apply", type="primary", key="touchup.apply", icon=":material/check:", disabled=running or not strokes,
                 on_click=actions.touch_up, args=(item.id, strokes), width="stretch")
    close.button("Close", key="touchup.close", on_click=_open, args=(None,), width="stretch")
    run_view.outcome("touchup")  # while it is made: its steps; then the new result opens above


def _open(item_id: str | None) -> None:
    page = session.page("touchup")
    page.opened, page.message = item_id, None
    _restart(False)


def _restart(keep: bool) -> None:
    """Start the canvas again: with every stroke drawn but the last (`keep`, Undo), or with none (Reset)."""
    shapes = (st.session_state.get(DRAWN_KEY) or {}).get("objects") or []
    st.session_state[START_KEY] = {"objects": list(shapes[:-1])} if keep and len(shapes) > 1 else None
    st.session_state[DRAWN_KEY] = None
    st.session_state[GENERATION_KEY] += 1


def fit(size: tuple[int, int], edge: int) -> tuple[int, int]:
    """`size` scaled so its long side is `edge` (or less, never enlarged past it)."""
    scale = edge / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _shown(item_id: str, made_from: session.Source, size: tuple[int, int], scope: str) -> Image.Image:
    """The photo at canvas size with what the cut-out removes dimmed; made once per result and size."""
    cache = st.session_state.setdefault("touchup.shown", {})
    key = (item_id, size)
    if key not in cache:
        cache.clear()  # one editor is open at a time
        photo = images.open_image(made_from.prepared.data)
        layers = masks.layers(made_from.prepared.data, scope)
        if made_from.strokes:
            with workers.one_photo():  # full-size work, in line with the photos being made
                layers = touchup.refine(photo, layers, made_from.strokes)
        cache[key] = overlay(photo, layers.alpha, size)
    return cache[key]


def overlay(photo: Image.Image, alpha: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """`photo` at `size`, the part `alpha` leaves out dimmed to DIM and cooled, so the cut-out stands out."""
    rgb = np.asarray(photo.convert("RGB").resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    keep = np.asarray(Image.fromarray(alpha).resize(size, Image.Resampling.BILINEAR), dtype=np.float32)[..., None]
    dimmed = rgb * DIM + np.array([0, 10, 40], dtype=np.float32)
    shown = rgb * (keep / 255) + dimmed * (1 - keep / 255)
    return Image.fromarray(np.clip(shown, 0, 255).astype(np.uint8))


def from_canvas(drawing: dict | None, canvas: tuple[int, int], photo: tuple[int, int]) -> list[touchup.Stroke]:
    """The Keep and Remove strokes of a canvas drawing (Fabric.js JSON: each freehand path's commands in its
    own frame, placed by its centre, scale and angle), in the photo's pixels. Anything that is not a stroke
    of one of the two brushes is left out; the service bounds what is left."""
    scale = photo[0] / canvas[0]
    strokes = []
    for shape in (drawing or {}).get("objects") or []:
        if not isinstance(shape, dict) or shape.get("type") not in ("path", "Path"):
            continue
        keep = {BRUSHES["Keep"]: True, BRUSHES["Remove"]: False}.get(shape.get("stroke"))
        points = _path_points(shape.get("path"))
        if keep is None or not points:
            continue
        placed = _placed(points, shape)
        width = _number(shape.get("strokeWidth"), 1.0) * (abs(_number(shape.get("scaleX"), 1.0))
                                                          + abs(_number(shape.get("scaleY"), 1.0))) / 2
        strokes.append(touchup.Stroke(keep, width * scale, tuple((x * scale, y * scale) for x, y in placed)))
    return strokes


def _number(value: object, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else default


def _path_points(path: object) -> list[tuple[float, float]]:
    """The points a freehand path passes through: each command's end point (and a curve's control point)."""
    points: list[tuple[float, float]] = []
    for command in path if isinstance(path, list) else []:
        if not isinstance(command, list) or len(command) < 3:
            continue
        numbers = [c for c in command[1:] if isinstance(c, (int, float)) and math.isfinite(c)]
        points.extend(zip(numbers[0::2], numbers[1::2]))
        if len(points) > touchup.MAX_POINTS:
            break
    return points


def _placed(points: list[tuple[float, float]], shape: dict) -> list[tuple[float, float]]:
    """`points` moved from the path's own frame to the canvas: Fabric centres the path's box on (left, top)
    (origin "center"), then scales and turns it there. A stroke just drawn sits where it was drawn."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    left, top = _number(shape.get("left"), cx), _number(shape.get("top"), cy)
    if shape.get("originX", "center") == "left":
        left += (max(xs) - min(xs)) / 2 * _number(shape.get("scaleX"), 1.0)
    if shape.get("originY", "center") == "top":
        top += (max(ys) - min(ys)) / 2 * _number(shape.get("scaleY"), 1.0)
    sx, sy = _number(shape.get("scaleX"), 1.0), _number(shape.get("scaleY"), 1.0)
    turn = math.radians(_number(shape.get("angle"), 0.0))
    cos, sin = math.cos(turn), math.sin(turn)
    placed = []
    for x, y in points:
        dx, dy = (x - cx) * sx, (y - cy) * sy
        placed.append((left + dx * cos - dy * sin, top + dx * sin + dy * cos))
    return placed
