"""Set a photo's subject on a plain colour, a backdrop photo or its own background blurred, in a standard frame.

Pure functions in the manner of Pillow's `ImageOps`: image in, new image out, nothing the caller passed is
changed. The subject comes as `masks.Layers` (colours with the old background taken out of the soft edge,
and the soft alpha), so a white background shows no dark fringe and a dark one no light fringe.

Framing places the subject's box (alpha from half up) in a frame of the chosen aspect with a margin, at the
subject's own resolution (never below it; the frame's long side is capped at MAX_EDGE). A subject cut by
the photo's edge stays flush with that edge of the new frame instead of floating in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from services.masks import Layers

__all__ = ["BACKGROUNDS", "FRAMINGS", "MAX_EDGE", "Composed", "Recipe", "compose", "cover", "transparent"]

FRAMINGS: dict[str, tuple[int, int] | None] = {"original": None, "square": (1, 1), "portrait": (4, 5),
                                               "landscape": (16, 9)}
BACKGROUNDS = ("colour", "backdrop", "blur")
EDGES = ("left", "top", "right", "bottom")
MAX_EDGE = 4096  # a framed result's long side: a bigger subject is scaled down to fit, never a bigger file
BOX_ALPHA = 128  # a pixel is in the subject's box from half opacity up
TOUCH = 0.005  # a box this close to the photo's edge (a share of that side) is cut by it: JPEG ringing, soft edge
BLUR_SHARE = 0.015  # the blurred original's Gaussian sigma, a share of the photo's long side: a lens wide open
FILL_WEIGHT = 0.3  # under the subject the blurred background is filled from coarser scales below this weight
# The contact shadow: the bottom FOOT of the subject's height, squashed to a quarter, blurred tight (CONTACT) and
# wide (AMBIENT, flattened to FLAT of that height); each darkens what is under it by up to its DEPTH
FOOT, CONTACT, AMBIENT, FLAT = 0.05, 0.006, 0.04, 0.35
DEPTH = (0.55, 0.3)


@dataclass(frozen=True)
class Recipe:
    """What to make: the background ("colour", "backdrop" or "blur"), its colour or backdrop photo, the
    framing (a key of FRAMINGS), the margin (share of the frame's shorter side left clear around the
    subject's box) and whether to draw a contact shadow (never on the blurred original: its own ground is
    there, shadow and all)."""

    background: str
    colour: tuple[int, int, int] = (255, 255, 255)
    backdrop: Image.Image | None = None
    framing: str = "original"
    margin: float = 0.08
    shadow: bool = True

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            msg = f"The background is one of {BACKGROUNDS}, not {self.background!r}."
            raise ValueError(msg)
        if self.framing not in FRAMINGS:
            msg = f"The framing is one of {tuple(FRAMINGS)}, not {self.framing!r}."
            raise ValueError(msg)
        if len(self.colour) != 3 or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in self.colour):
            msg = f"A colour is three whole numbers from 0 to 255, not {self.colour!r}."
            raise ValueError(msg)
        if not 0.0 <= self.margin <= 0.4:
            msg = f"The margin is a share of the frame from 0 to 0.4, not {self.margin!r}."
            raise ValueError(msg)
        if self.background == "backdrop" and self.backdrop is None:
            msg = "A backdrop background needs a backdrop photo."
            raise ValueError(msg)


@dataclass(frozen=True)
class Composed:
    """The result and the facts a caption is made from."""

    image: Image.Image  # RGB, the whole frame (RGBA from `transparent`)
    size: tuple[int, int]  # (width, height)
    subject_box: tuple[int, int, int, int]  # (left, top, right, bottom) of the subject's box in the frame
    subject_scale: float  # 1.0: the subject at its own resolution
    anchored: tuple[str, ...]  # frame edges the subject is flush with because the photo cut it there
    backdrop_upscaled: bool  # the backdrop was smaller than the frame and was enlarged to cover it
    shadow: bool  # a contact shadow was drawn
    offset: tuple[int, int] = (0, 0)  # where the photo's top-left lands: frame = subject_scale * photo + offset


def compose(layers: Layers, recipe: Recipe, photo: Image.Image | None = None) -> Composed:
    """The subject of `layers` on the background `recipe` asks for, in its framing. `photo` is the photo the
    layers were made from; the blurred original needs it (its own background)."""
    subject, alpha = layers.subject, layers.alpha
    if recipe.background == "blur" and (photo is None or photo.size != layers.size):
        msg = "The blurred original needs the photo the subject was cut from, at the same size."
        raise ValueError(msg)
    rows, cols = alpha.max(1), alpha.max(0)  # each pixel read once: boxes and extents come from these
    plan = _plan(rows, cols, recipe)
    width, height = plan.size
    upscaled = False
    if recipe.background == "colour":
        canvas = np.empty((height, width, 3), np.uint8)
        canvas[:] = np.array(recipe.colour, np.uint8)
    elif recipe.background == "backdrop":
        canvas, upscaled = _cover(_rgb(recipe.backdrop), plan.size)
    else:
        canvas = _blurred(_rgb(photo), alpha, plan)
    placed = _placed(subject, alpha, rows, cols, plan)
    shadow = False
    if recipe.shadow and recipe.background != "blur" and placed is not None and "bottom" not in plan.anchored:
        shadow = _shade(canvas, placed, plan)
    if placed is not None:
        (x0, y0), colours, weight = placed
        region = canvas[y0 : y0 + weight.shape[0], x0 : x0 + weight.shape[1]]
        region[:] = cv2.blendLinear(colours, region, weight, 1.0 - weight)
    return Composed(Image.fromarray(canvas, "RGB"), plan.size, plan.box, plan.scale, plan.anchored, upscaled, shadow,
                    plan.offset)


def transparent(layers: Layers, framing: str = "original", margin: float = 0.08) -> Composed:
    """The subject of `layers` alone on transparency (an RGBA image), framed as a plain colour would be."""
    recipe = Recipe("colour", framing=framing, margin=margin, shadow=False)  # checks framing and margin
    alpha = layers.alpha
    rows, cols = alpha.max(1), alpha.max(0)
    plan = _plan(rows, cols, recipe)
    canvas = np.zeros((plan.size[1], plan.size[0], 4), np.uint8)
    placed = _placed(layers.subject, alpha, rows, cols, plan)
    if placed is not None:
        (x0, y0), colours, weight = placed
        region = canvas[y0 : y0 + weight.shape[0], x0 : x0 + weight.shape[1]]
        region[..., :3] = colours
        region[..., 3] = np.clip(weight * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Composed(Image.fromarray(canvas, "RGBA"), plan.size, plan.box, plan.scale, plan.anchored,
                    backdrop_upscaled=False, shadow=False, offset=plan.offset)


def cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` scaled to cover `size` and centre-cropped to it, never stretched; a new RGB image."""
    return Image.fromarray(_cover(_rgb(image), size)[0], "RGB")


# ---------------------------------------------------------------- where the subject goes


@dataclass(frozen=True)
class _Plan:
    size: tuple[int, int]  # the frame's (width, height)
    scale: float  # frame pixels per photo pixel for the subject
    offset: tuple[int, int]  # frame = scale * photo + offset
    box: tuple[int, int, int, int]  # the subject's box in the frame, clipped to it
    anchored: tuple[str, ...]
    photo_box: tuple[int, int, int, int]  # the subject's box in the photo


def _plan(rows: np.ndarray, cols: np.ndarray, recipe: Recipe) -> _Plan:
    """The frame's size and where the subject's box goes in it; `rows` and `cols` are the alpha's maxima."""
    h, w = rows.size, cols.size
    box, touching = _box(rows, cols)
    ratio = FRAMINGS[recipe.framing]
    if ratio is None:
        return _Plan((w, h), 1.0, (0, 0), box, touching, box)
    # a side the photo cut is taken to the photo's edge, so the cut lines up with the frame's edge
    x0, y0, x1, y1 = (0 if "left" in touching else box[0], 0 if "top" in touching else box[1],
                      w if "right" in touching else box[2], h if "bottom" in touching else box[3])
    across, up = ratio
    axes = (((x1 - x0), across / up, ("left" in touching) + ("right" in touching)),
            ((y1 - y0), 1.0, ("top" in touching) + ("bottom" in touching)))
    needed, cut_binds = _frame_height(axes, recipe.margin, min(across / up, 1.0))
    # whole units of the aspect: rounded down when a cut axis binds, so its cut is cropped by a few pixels
    # rather than left with a gap; else up, so the margins hold
    units = max(1, math.floor(needed / up + 1e-6) if cut_binds else math.ceil(needed / up - 1e-6))
    most = MAX_EDGE // max(across, up)
    scale = min(1.0, most * up / needed) if units > most else 1.0
    units = min(units, most)
    width, height = across * units, up * units
    margin = recipe.margin * min(width, height)
    bottom_centre = recipe.background == "backdrop"
    left = _start(width, (x1 - x0) * scale, margin, "left" in touching, "right" in touching, False, False)
    top = _start(height, (y1 - y0) * scale, margin, "top" in touching, "bottom" in touching, True, bottom_centre)
    offset = (round(left - x0 * scale), round(top - y0 * scale))
    placed = tuple(round(v * scale) + offset[i % 2] for i, v in enumerate(box))
    clipped = (max(0, placed[0]), max(0, placed[1]), min(width, placed[2]), min(height, placed[3]))
    flush = {"left": offset[0] <= 0, "top": offset[1] <= 0, "right": round(w * scale) + offset[0] >= width,
             "bottom": round(h * scale) + offset[1] >= height}
    anchored = tuple(edge for edge in EDGES if edge in touching and flush[edge])
    return _Plan((width, height), scale, offset, clipped, anchored, box)


def _box(rows: np.ndarray, cols: np.ndarray) -> tuple[tuple[int, int, int, int], tuple[str, ...]]:
    """The subject's box (left, top, right, bottom; right and bottom exclusive) and the photo's edges it
    touches, from the alpha's row and column maxima. No pixel at half opacity: the whole photo."""
    h, w = rows.size, cols.size
    box = _extent(rows, cols, BOX_ALPHA)
    if box is None:
        return (0, 0, w, h), EDGES
    near_x, near_y = max(1, round(TOUCH * w)), max(1, round(TOUCH * h))
    gaps = {"left": box[0], "top": box[1], "right": w - box[2], "bottom": h - box[3]}
    return box, tuple(e for e in EDGES if gaps[e] < (near_x if e in ("left", "right") else near_y))


def _frame_height(axes, margin: float, shorter: float) -> tuple[float, bool]:
    """The frame's height in subject pixels, and whether an axis the photo cut on both sides binds it.
    `axes` holds (box length, frame length per unit of height, sides the photo cut) for x and y; `shorter`
    is the frame's shorter side per unit of height.

    The frame shows the whole box, with the margin on every side the photo did not cut. A box cut on both
    sides of an axis fills that axis with no gap; when that leaves too little room on the other axis, a box
    cut on one side there is cropped further on that side, and only a box cut on neither side there (which
    is never cropped) leaves a gap instead."""

    def fit(cut: int) -> float:  # the height that holds the boxes cut on `cut` sides, with their margins
        return max((b / (f - (2 - n) * margin * shorter) for b, f, n in axes if n == cut), default=0.0)

    both = [b / f for b, f, n in axes if n == 2]
    fits = max(fit(0), fit(1), *both, 1.0)
    cap = min(both, default=math.inf)
    if fits <= cap * (1 + 1e-9):
        return fits, bool(both)
    height = max(fit(0), cap, 1.0)
    return height, height == cap


def _start(length: int, extent: float, margin: float, low: bool, high: bool, vertical: bool,
           bottom_centre: bool) -> float:
    """Where a box of `extent` starts along a frame side of `length`: centred with the margin (or standing on
    the bottom margin), or flush with the side(s) the photo cut, cropped further there when the margin on the
    other side needs the room. A box cut at top and bottom that cannot fill the height stands on the bottom."""
    if low and not high:
        return min(0.0, length - margin - extent)
    if high and not low:
        return max(length - extent, margin)
    if low and high and vertical and extent < length:
        return length - extent
    if not low and not high and bottom_centre:
        return length - margin - extent
    return (length - extent) / 2


# ---------------------------------------------------------------- the backgrounds


def _rgb(image: Image.Image) -> np.ndarray:
    """The image's RGB pixels, transparency flattened onto white as a JPEG of it would be."""
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return np.asarray(flat)
    return np.asarray(image.convert("RGB") if image.mode != "RGB" else image)


def _cover(rgb: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """`rgb` scaled to cover `size` and centre-cropped (a new array), and whether it was enlarged."""
    width, height = size
    h, w = rgb.shape[:2]
    scale = max(width / w, height / h)
    cw, ch = min(w, max(1, round(width / scale))), min(h, max(1, round(height / scale)))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    crop = rgb[y0 : y0 + ch, x0 : x0 + cw]
    if (cw, ch) == (width, height):
        return crop.copy(), False
    upscaled = scale > 1.0
    resized = cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC if upscaled else cv2.INTER_AREA)
    return resized, upscaled


def _blurred(rgb: np.ndarray, alpha: np.ndarray, plan: _Plan) -> np.ndarray:
    """The photo's own background, blurred with the subject left out (normalised convolution, so no colour
    of the subject bleeds out; under the subject filled in from around it), laid out to cover the frame:
    lined up with the subject where that covers the frame, else enlarged just enough."""
    h, w = alpha.shape
    width, height = plan.size
    sigma = BLUR_SHARE * max(w, h)
    factor = max(1, int(sigma / 3))  # worked on a copy this many times smaller: the blur leaves nothing finer
    sw, sh = max(1, w // factor), max(1, h // factor)
    # the subject and its soft edge, a little grown, carry no weight: only the background is blurred
    keep = (cv2.dilate(alpha, np.ones((5, 5), np.uint8)) == 0).astype(np.float32)
    weighted = cv2.bitwise_and(rgb, rgb, mask=keep.astype(np.uint8))
    box = (slice(0, sh * factor), slice(0, sw * factor))
    total = cv2.resize(weighted[box].astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    weight = cv2.resize(keep[box], (sw, sh), interpolation=cv2.INTER_AREA)
    if float(weight.sum()) < 1.0:  # the subject fills the photo: blur it all rather than show nothing
        total, weight = cv2.resize(rgb[box].astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA), \
            np.ones((sh, sw), np.float32)
    small = sigma / factor
    total = cv2.GaussianBlur(total, (0, 0), small)
    weight = cv2.GaussianBlur(weight, (0, 0), small)
    background = _filled(total, weight)
    # frame = t * photo + o: lined up with the subject's centre, enlarged and moved just enough to cover the frame
    t = max(plan.scale, width / w, height / h)
    x0, y0, x1, y1 = plan.photo_box
    centre = (plan.scale * (x0 + x1) / 2 + plan.offset[0], plan.scale * (y0 + y1) / 2 + plan.offset[1])
    ox = min(0.0, max(width - t * w, centre[0] - t * (x0 + x1) / 2))
    oy = min(0.0, max(height - t * h, centre[1] - t * (y0 + y1) / 2))
    # frame pixel q lies at photo pixel (q - o) / t, i.e. at small pixel (q - o) / (t f) - (f - 1) / (2 f)
    step = 1.0 / (t * factor)
    shift = -(factor - 1) / (2 * factor)
    matrix = np.float32([[step, 0, -ox * step + shift], [0, step, -oy * step + shift]])
    out = cv2.warpAffine(background, matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    return cv2.convertScaleAbs(out)  # rounded and saturated after the enlargement, so gradients do not band


def _filled(total: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """total / weight, with places of little weight (under the subject) filled from ever coarser copies."""
    levels = [(total, weight)]
    while float(levels[-1][1].min()) < FILL_WEIGHT and min(levels[-1][1].shape) > 1:
        t, wt = levels[-1]
        size = (max(1, t.shape[1] // 2), max(1, t.shape[0] // 2))
        levels.append((cv2.resize(t, size, interpolation=cv2.INTER_AREA),
                       cv2.resize(wt, size, interpolation=cv2.INTER_AREA)))
    t, wt = levels[-1]
    value = t / np.maximum(wt, 1e-6)[..., None]
    for t, wt in reversed(levels[:-1]):
        coarse = cv2.resize(value, (t.shape[1], t.shape[0]), interpolation=cv2.INTER_LINEAR)
        sure = np.clip(wt / FILL_WEIGHT, 0.0, 1.0)[..., None]
        value = sure * (t / np.maximum(wt, 1e-6)[..., None]) + (1.0 - sure) * coarse
    return value


# ---------------------------------------------------------------- the subject and its shadow


def _extent(rows: np.ndarray, cols: np.ndarray, least: int) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the alpha from `least` up, from its row and column maxima; None if none."""
    ys, xs = np.flatnonzero(rows >= least), np.flatnonzero(cols >= least)
    if ys.size == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def _placed(subject: np.ndarray, alpha: np.ndarray, rows: np.ndarray, cols: np.ndarray, plan: _Plan):
    """((x, y) in the frame, colours uint8, weight float32 0..1) of the subject's layer where it lands in
    the frame, or None when nothing of it does. Only the layer's own extent is worked on."""
    extent = _extent(rows, cols, 1)
    if extent is None:
        return None
    x0, y0, x1, y1 = extent
    colours, a = subject[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    s, (ox, oy) = plan.scale, plan.offset
    if s != 1.0:  # colours averaged weighted by alpha, so the old background never mixes into the edge
        size = (max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s)))
        af = a.astype(np.float32)
        weight = cv2.resize(af, size, interpolation=cv2.INTER_AREA)
        premultiplied = cv2.resize(colours.astype(np.float32) * af[..., None], size, interpolation=cv2.INTER_AREA)
        colours = np.clip(premultiplied / np.maximum(weight, 1e-3)[..., None] + 0.5, 0, 255).astype(np.uint8)
        a = np.clip(weight + 0.5, 0, 255).astype(np.uint8)
    fx, fy = round(x0 * s) + ox, round(y0 * s) + oy
    width, height = plan.size
    cx0, cy0 = max(0, -fx), max(0, -fy)
    cx1, cy1 = min(a.shape[1], width - fx), min(a.shape[0], height - fy)
    if cx0 >= cx1 or cy0 >= cy1:
        return None
    weight = a[cy0:cy1, cx0:cx1].astype(np.float32) * np.float32(1 / 255)
    return (fx + cx0, fy + cy0), colours[cy0:cy1, cx0:cx1], weight


def _shade(canvas: np.ndarray, placed, plan: _Plan) -> bool:
    """Darken `canvas` in place under the subject: its footprint (the bottom band of its alpha) squashed
    flat at the contact line and blurred twice, tight and dark at contact, wide and light around it. Drawn
    inside the frame's outer rows and columns, which stay the background's. False when nothing was drawn."""
    (x, y), _, weight = placed
    top, bottom = plan.box[1], plan.box[3]
    tall = bottom - top
    band = max(2, round(FOOT * tall))
    foot = weight[max(0, bottom - band - y) : max(0, bottom - y)]
    if tall < 4 or foot.size == 0 or float(foot.max()) < 0.5:
        return False
    squash = max(1, round(band * 0.25))
    foot = cv2.resize(foot, (foot.shape[1], squash), interpolation=cv2.INTER_AREA)
    tight, wide = max(1.0, CONTACT * tall), max(2.0, AMBIENT * tall)
    reach_x, reach_y = math.ceil(3 * wide), math.ceil(3 * max(tight, FLAT * wide))
    # the footprint with room for the blurs' tails, at frame position (sx, sy)
    sx, sy = x - reach_x, bottom - squash - reach_y
    source = np.zeros((squash + 2 * reach_y, foot.shape[1] + 2 * reach_x), np.float32)
    source[reach_y : reach_y + squash, reach_x : reach_x + foot.shape[1]] = foot
    width, height = plan.size
    wx0, wx1 = max(1, sx), min(width - 1, sx + source.shape[1])
    wy0, wy1 = max(1, sy), min(height - 1, sy + source.shape[0])
    if wx0 >= wx1 or wy0 >= wy1:
        return False
    inner = (slice(wy0 - sy, wy1 - sy), slice(wx0 - sx, wx1 - sx))
    contact = cv2.GaussianBlur(source, (0, 0), tight)[inner]
    ambient = cv2.GaussianBlur(source, (0, 0), wide, sigmaY=FLAT * wide)[inner]
    ambient *= 1.0 / max(float(ambient.max()), 1e-6)  # as dark under a wide base as under a narrow one
    light = (1.0 - DEPTH[0] * np.minimum(contact, 1.0)) * (1.0 - DEPTH[1] * ambient)
    region = canvas[wy0:wy1, wx0:wx1]
    region[:] = np.clip(region * light[..., None] + 0.5, 0, 255).astype(np.uint8)
    return True
