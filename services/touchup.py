"""Touch up a subject cut-out with Keep and Remove brush strokes.

A pure function in the manner of `services.compose`: a photo, its subject layers (`services.masks.Layers`)
and a few strokes in, new layers out; nothing the caller passed is changed. The strokes are hard
constraints: every pixel a Keep stroke covers ends opaque, every pixel a Remove stroke covers transparent
(where two strokes cross, the later one wins).

How the strokes act, on a copy of the photo at most WORK_EDGE pixels long:

- The subject model's mask is split into connected regions. A Remove stroke that touches a region other
  than the subject's main one (the largest region, and any a Keep stroke touches) drops that whole region,
  however little of it was painted.
- Around each stroke (within `REACH` of the photo's long side) the mask is cut again with GrabCut: the
  strokes are definite subject or background, the model's mask the probable answer, and everything farther
  from the strokes stays as the model had it. So a Remove stroke across a stray part joined to the subject
  takes the part off along the photo's own edges, and a short Keep stroke inside a missed part brings the
  part back as far as its edges.
- The new mask then goes through the offline engine's own edge refinement and colour decontamination at
  full size. Pixels far from anything that changed keep the alpha they had.

The other candidate (the same regions, then a watershed from the strokes to the photo's edges) is measured
beside this one in `bench/touchup_figures.py`, on real-photo composites; GrabCut's cut scored higher there,
on the mean and far higher on the worst photo.

Strokes are input from a person's browser: `checked` bounds their number and size, refuses what is absurd
with `TouchUpError` (a `kind` and `facts`, for the interface to word), and clips every point to the photo.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from services import images, masks, offline
from services.errors import Refusal
from services.masks import Layers

__all__ = ["MAX_POINTS", "MAX_STROKES", "MAX_WIDTH", "MIN_WIDTH", "REACH", "Stroke", "TouchUpError", "checked",
           "layers", "refine"]

MAX_STROKES = 64  # far more than a touch-up needs; an editor keeps Undo in its own history
MAX_POINTS = 4096  # per stroke: a finger dragged for a minute at 60 events a second
# Brush diameters are shares of the photo's long side, so a brush looks the same on any photo; a width
# outside them is clamped (never below one pixel)
MIN_WIDTH = 0.002
MAX_WIDTH = 0.25
WORK_EDGE = 640  # strokes act on a copy this long (the edge is read off the full size after)
REACH = 0.4  # a stroke re-cuts the mask within this share of the long side around it
OUTLINE_REACH = 0.08  # and moves the model's outline within this share of it
BAND = 0.012  # the unsure band along the model's outline near a stroke, a share of the long side
GRABCUT_ITERATIONS = 2  # measured: 3 or 4 passes cut the same on the real-photo set, for 30-50 % more time
KEEP, REMOVE = 1, 2  # painted labels


@dataclass(frozen=True)
class Stroke:
    """One brush stroke: Keep (`keep` True) or Remove, its diameter and its path, in the photo's pixels.

    `points` are (x, y) in drawing order; a single point is a dab."""

    keep: bool
    width: float
    points: tuple[tuple[float, float], ...]


class TouchUpError(Refusal, ValueError):
    """Strokes that cannot be used: `kind` says why ("no_strokes", "too_many_strokes", "too_many_points",
    "empty_stroke", "not_a_number", "not_a_stroke", "no_photo") and `facts` holds the figures (limits,
    which stroke), for the interface to put into words."""


def checked(strokes: Iterable[Stroke], size: tuple[int, int]) -> tuple[Stroke, ...]:
    """Bound `strokes` for a photo of `size` (width, height).

    Refuses, with `TouchUpError`, no strokes, more than MAX_STROKES, a stroke with no point or more than
    MAX_POINTS, a width or point that is not a finite number, and anything that is not a `Stroke`. Clamps
    each width to MIN_WIDTH..MAX_WIDTH of the long side (at least one pixel), and clips every point to the
    photo, so no stroke addresses a pixel outside it. Returns new strokes; the input is not changed."""
    w, h = (int(side) for side in size)
    if w < 1 or h < 1:
        raise TouchUpError("no_photo", size=(w, h))
    long_side = max(w, h)
    low, high = max(1.0, MIN_WIDTH * long_side), max(1.0, MAX_WIDTH * long_side)
    out: list[Stroke] = []
    for index, stroke in enumerate(strokes):  # counted as it goes: an endless iterable is refused, not read
        if index >= MAX_STROKES:
            raise TouchUpError("too_many_strokes", limit=MAX_STROKES)
        if not isinstance(stroke, Stroke):
            raise TouchUpError("not_a_stroke", stroke=index)
        points = _points(stroke.points, index)
        try:
            width = float(stroke.width)
        except (TypeError, ValueError):
            raise TouchUpError("not_a_number", stroke=index, field="width") from None
        if not math.isfinite(width):
            raise TouchUpError("not_a_number", stroke=index, field="width")
        clipped = tuple((min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)) for x, y in points)
        out.append(Stroke(bool(stroke.keep), min(max(width, low), high), clipped))
    if not out:
        raise TouchUpError("no_strokes")
    return tuple(out)


def refine(photo: Image.Image, layers: Layers, strokes: Iterable[Stroke]) -> Layers:
    """New subject layers for `photo` (the image `layers` were made from, same size) after `strokes`.

    Keep-painted pixels end opaque and Remove-painted ones transparent; a Remove stroke on a stray region
    drops the whole region, a Keep stroke inside a missed part brings the part back to its edges, and between
    the strokes the outline follows the photo's edges. The subject's colours are decontaminated again along
    the new edge. Strokes are `checked` first (TouchUpError when absurd); the inputs are not changed."""
    return _touch_up(photo, layers, strokes, _grabcut_cut)


def layers(data: bytes, scope: str = "", strokes: Iterable[Stroke] = ()) -> Layers:
    """The subject layers every background made with the mask uses: the photo's own (`masks.layers`, cut
    once per photo and session) or, with `strokes`, those layers touched up by them (made now)."""
    cut = masks.layers(data, scope)
    strokes = tuple(strokes)
    return refine(images.open_image(data), cut, strokes) if strokes else cut


# ---------------------------------------------------------------- the steps


Cut = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _touch_up(photo: Image.Image, layers: Layers, strokes: Iterable[Stroke], cut: Cut) -> Layers:
    """`refine` with the mask's cut at the working size made by `cut(small_rgb, hard, painted)`."""
    if photo.size != layers.size:
        msg = f"The photo is {photo.size[0]}x{photo.size[1]} but its layers are {layers.size[0]}x{layers.size[1]}."
        raise ValueError(msg)
    strokes = checked(strokes, layers.size)
    rgb = np.asarray(photo.convert("RGB"))
    h, w = rgb.shape[:2]
    small = offline._downscale(rgb, WORK_EDGE)
    sh, sw = small.shape[:2]
    old_small = cv2.resize(layers.alpha, (sw, sh), interpolation=cv2.INTER_AREA)
    hard = (old_small >= 128).astype(np.uint8)
    painted = _paint(strokes, (sw, sh), sw / w)
    new_hard = cut(small, hard, painted)
    new_hard[painted == KEEP] = 1
    new_hard[painted == REMOVE] = 0
    changed = new_hard != hard
    if not changed.any():
        alpha = layers.alpha.copy()
    else:
        alpha = _merge(layers.alpha, offline._refine(rgb, new_hard), changed, (w, h))
    full = _paint(strokes, (w, h), 1.0)  # the hard constraints, at full size
    alpha[full == KEEP] = 255
    alpha[full == REMOVE] = 0
    return Layers(offline._decontaminate(rgb, alpha), alpha)


def _points(points: object, index: int) -> list[tuple[float, float]]:
    """A stroke's points as finite floats, bounded in number."""
    try:
        count = len(points)  # type: ignore[arg-type]
    except TypeError:
        raise TouchUpError("not_a_stroke", stroke=index) from None
    if count == 0:
        raise TouchUpError("empty_stroke", stroke=index)
    if count > MAX_POINTS:
        raise TouchUpError("too_many_points", stroke=index, limit=MAX_POINTS, points=count)
    out = []
    for point in points:  # type: ignore[attr-defined]
        try:
            x, y = (float(v) for v in point)
        except (TypeError, ValueError):
            raise TouchUpError("not_a_number", stroke=index, field="points") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise TouchUpError("not_a_number", stroke=index, field="points")
        out.append((x, y))
    return out


def _paint(strokes: tuple[Stroke, ...], size: tuple[int, int], scale: float) -> np.ndarray:
    """The strokes drawn in order (KEEP, REMOVE, 0 unpainted) on a uint8 canvas of `size`, at `scale`."""
    w, h = size
    canvas = np.zeros((h, w), np.uint8)
    shift = 4  # sub-pixel positions: 1/16 of a pixel
    for stroke in strokes:
        value = KEEP if stroke.keep else REMOVE
        points = np.round(np.array(stroke.points, np.float64) * scale * (1 << shift)).astype(np.int32)
        diameter = stroke.width * scale
        if diameter < 1.5 or len(points) == 1:
            for x, y in points:
                cv2.circle(canvas, (int(x), int(y)), int(round(diameter / 2 * (1 << shift))), value, -1, cv2.LINE_8,
                           shift)
        if len(points) > 1:
            cv2.polylines(canvas, [points.reshape(-1, 1, 2)], False, value, max(1, round(diameter)), cv2.LINE_8,
                          shift)
    return canvas


def _merge(old: np.ndarray, new: np.ndarray, changed: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The refined alpha where the mask changed (and a little around it), the old alpha elsewhere, blended."""
    grown = cv2.dilate(changed.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(np.float32)
    weight = cv2.resize(cv2.GaussianBlur(grown, (0, 0), 1.5), size, interpolation=cv2.INTER_LINEAR)
    weight = np.clip(weight * 2.0, 0.0, 1.0)  # fully the new alpha over the changed part itself
    return np.clip(old * (1.0 - weight) + new * weight + 0.5, 0, 255).astype(np.uint8)


def _regions(hard: np.ndarray, painted: np.ndarray) -> np.ndarray:
    """The mask without the regions a Remove stroke touches, unless they are the subject's main one: the
    largest region (but not when only a Remove stroke touches it and a Keep stroke another) and any region a
    Keep stroke touches. A main region a Remove stroke touches is cut around the stroke instead."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(hard, connectivity=8)
    if count <= 1:
        return hard.copy()
    ids = np.arange(count)
    kept = np.zeros(count, bool)
    kept[np.unique(labels[painted == KEEP])] = True
    removed = np.zeros(count, bool)
    removed[np.unique(labels[painted == REMOVE])] = True
    kept[0] = removed[0] = False
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if not (removed[largest] and not kept[largest] and kept.any()):
        kept[largest] = True
    return ((ids > 0) & ~(removed & ~kept))[labels].astype(np.uint8)


def _zones(hard: np.ndarray, painted: np.ndarray, share: float | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Where the strokes may change the mask: near Remove strokes inside it, near Keep strokes outside it
    (within `share` of the long side), and the model's outline near either. Returns (near remove, near keep,
    outline band, reach in px)."""
    long_side = max(hard.shape)
    reach = max(3, round((REACH if share is None else share) * long_side))
    to_remove, to_keep = _distance_to(painted == REMOVE), _distance_to(painted == KEEP)
    near_remove, near_keep = to_remove <= reach, to_keep <= reach
    band = max(2, round(BAND * long_side))
    ring = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    near = np.minimum(to_remove, to_keep) <= max(3, round(OUTLINE_REACH * long_side))
    outline = (cv2.dilate(hard, ring) != cv2.erode(hard, ring)) & near
    return near_remove, near_keep, outline, reach


def _distance_to(painted: np.ndarray) -> np.ndarray:
    """Each pixel's distance in pixels to the nearest painted one (infinite with none painted)."""
    if not painted.any():
        return np.full(painted.shape, np.inf, np.float32)
    return cv2.distanceTransform((~painted).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _grabcut_cut(small: np.ndarray, hard: np.ndarray, painted: np.ndarray) -> np.ndarray:
    """The new 0/1 mask at the working size: regions dropped, then GrabCut around the strokes, seeded with
    the strokes as definite labels and the model's mask as the probable one."""
    mask = _regions(hard, painted)
    near_remove, near_keep, outline, reach = _zones(mask, painted)
    inside = mask.astype(bool)
    unsure = (near_remove & inside) | (near_keep & ~inside) | outline
    seeds = np.where(inside, cv2.GC_FGD, cv2.GC_BGD).astype(np.uint8)
    seeds[unsure & inside] = cv2.GC_PR_FGD
    seeds[unsure & ~inside] = cv2.GC_PR_BGD
    seeds[painted == KEEP] = cv2.GC_FGD
    seeds[painted == REMOVE] = cv2.GC_BGD
    if not unsure.any():
        return mask
    # GrabCut on a window around the unsure pixels: its colour models are the strokes' neighbourhood's
    y0, y1, x0, x1 = _window(unsure, reach // 2)
    window = seeds[y0:y1, x0:x1].copy()
    labels = set(np.unique(window).tolist())
    if not labels & {cv2.GC_BGD, cv2.GC_PR_BGD} or not labels & {cv2.GC_FGD, cv2.GC_PR_FGD}:
        return mask  # one side only: nothing to learn the other from
    cut = window.copy()
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models with k-means: the same strokes, the same cut
    cv2.grabCut(cv2.cvtColor(np.ascontiguousarray(small[y0:y1, x0:x1]), cv2.COLOR_RGB2BGR), cut, None, bgd, fgd,
                GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    out = mask.copy()
    out[y0:y1, x0:x1] = (cut == cv2.GC_FGD) | (cut == cv2.GC_PR_FGD)
    return out


def _window(zone: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(zone)
    h, w = zone.shape
    return (max(0, ys.min() - margin), min(h, ys.max() + margin + 1),
            max(0, xs.min() - margin), min(w, xs.max() + margin + 1))
