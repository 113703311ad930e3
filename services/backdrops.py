"""Backdrops drawn from a prompt: scene words pick a wall and a floor, moods and colour names tint them.

Everything is painted with numpy at a small working size (a backdrop is soft, like a background out of
focus) and enlarged, then fine grain is added at full size so gradients do not band. The same prompt
always gives the same picture: the random generator is seeded from a SHA-256 of the normalised prompt.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image

WORK_EDGE = 640  # painting size; the result is enlarged, which also keeps the 2 MP path fast

Rgb = tuple[float, float, float]

# Each scene may give a wall (three stops: top, middle, at the horizon) and a floor (far, near); a
# "weak" part is used only when no other word in the prompt supplies that part.
SCENES: dict[str, dict] = {
    "studio": {"wall": ((0.83, 0.83, 0.82), (0.77, 0.77, 0.76), (0.71, 0.71, 0.70)),
               "floor": ((0.72, 0.72, 0.71), (0.60, 0.60, 0.59)), "sweep": 0.10, "near": True},
    "marble": {"wall_weak": ((0.90, 0.87, 0.83), (0.84, 0.81, 0.76), (0.78, 0.75, 0.70)),
               "floor": ((0.93, 0.92, 0.90), (0.85, 0.84, 0.82)), "texture": "marble", "near": True},
    "wood": {"wall_weak": ((0.86, 0.82, 0.76), (0.80, 0.75, 0.68), (0.72, 0.67, 0.60)),
             "floor": ((0.62, 0.45, 0.30), (0.45, 0.30, 0.18)), "texture": "planks", "near": True},
    "warehouse": {"wall": ((0.30, 0.30, 0.30), (0.42, 0.41, 0.39), (0.50, 0.48, 0.45)),
                  "floor": ((0.56, 0.55, 0.53), (0.40, 0.39, 0.38)), "texture": "concrete",
                  "motifs": ("windows",), "near": True},
    "sunset": {"wall": ((0.22, 0.17, 0.38), (0.85, 0.42, 0.38), (1.00, 0.78, 0.45)),
               "floor_weak": ((0.62, 0.40, 0.33), (0.22, 0.14, 0.18)), "motifs": ("sun",)},
    "beach": {"wall_weak": ((0.36, 0.60, 0.88), (0.62, 0.79, 0.94), (0.88, 0.93, 0.97)),
              "floor": ((0.90, 0.82, 0.66), (0.80, 0.69, 0.52)), "texture": "sand", "motifs": ("sea",)},
    "forest": {"wall": ((0.08, 0.18, 0.10), (0.20, 0.33, 0.16), (0.36, 0.46, 0.24)),
               "floor": ((0.30, 0.34, 0.16), (0.15, 0.16, 0.08)), "texture": "moss",
               "motifs": ("trees", "leaves"), "sweep": 0.05},
    "city": {"wall": ((0.50, 0.56, 0.64), (0.60, 0.63, 0.68), (0.68, 0.69, 0.70)),
             "floor": ((0.38, 0.38, 0.40), (0.24, 0.24, 0.26)), "motifs": ("lights",)},
    "snow": {"wall": ((0.74, 0.82, 0.92), (0.85, 0.89, 0.95), (0.93, 0.95, 0.98)),
             "floor": ((0.96, 0.97, 0.99), (0.86, 0.89, 0.94)), "texture": "snow", "motifs": ("flakes",),
             "sweep": 0.04},
    "space": {"wall": ((0.01, 0.01, 0.04), (0.04, 0.03, 0.10), (0.10, 0.06, 0.18)),
              "floor_weak": ((0.10, 0.08, 0.14), (0.04, 0.03, 0.06)), "motifs": ("stars",), "sweep": 0.3},
}
SYNONYMS = {
    "studio": "studio backdrop seamless paper plain", "marble": "marble counter countertop kitchen granite",
    "wood": "wood wooden table desk oak walnut", "warehouse": "warehouse industrial loft factory garage concrete",
    "sunset": "sunset sunrise dusk dawn golden-hour", "beach": "beach sea ocean coast shore tropical",
    "forest": "forest woods woodland trees jungle garden park", "city": "city urban street downtown neon skyline",
    "snow": "snow snowy winter ice icy frozen", "space": "space galaxy stars starry cosmic",
}
WORDS = {word: scene for scene, words in SYNONYMS.items() for word in words.split()}

COLOURS: dict[str, Rgb] = {
    "red": (0.78, 0.16, 0.16), "orange": (0.95, 0.52, 0.16), "yellow": (0.96, 0.84, 0.28),
    "gold": (0.85, 0.68, 0.30), "green": (0.25, 0.60, 0.32), "mint": (0.66, 0.88, 0.76),
    "teal": (0.12, 0.52, 0.54), "turquoise": (0.25, 0.78, 0.76), "blue": (0.20, 0.40, 0.80),
    "navy": (0.10, 0.15, 0.36), "purple": (0.48, 0.26, 0.66), "violet": (0.56, 0.36, 0.80),
    "lavender": (0.75, 0.68, 0.88), "pink": (0.94, 0.56, 0.68), "magenta": (0.80, 0.20, 0.60),
    "brown": (0.45, 0.30, 0.20), "beige": (0.86, 0.79, 0.66), "cream": (0.95, 0.91, 0.80),
    "white": (0.95, 0.95, 0.94), "grey": (0.55, 0.55, 0.55), "gray": (0.55, 0.55, 0.55),
    "black": (0.08, 0.08, 0.09), "silver": (0.75, 0.76, 0.78), "peach": (0.98, 0.75, 0.62),
}
TONES = {"dark": 0.45, "light": 1.25, "pale": 1.25}  # before a floor material: its shade, not a mood
MOODS = {
    "warm": "warm golden cozy sunny morning amber", "cool": "cool cold icy winter night",
    "dark": "dark moody dramatic noir night evening midnight", "bright": "bright light airy soft clean minimal",
    "pastel": "pastel pale", "vivid": "vibrant vivid bold colorful colourful neon", "muted": "muted matte subtle",
}


@dataclass(frozen=True)
class Look:
    """What a prompt asks for, resolved to paint: colours in 0..1 sRGB and the motifs to draw."""

    wall: tuple[Rgb, Rgb, Rgb] = SCENES["studio"]["wall"]
    floor: tuple[Rgb, Rgb] = SCENES["studio"]["floor"]
    texture: str = ""
    motifs: tuple[str, ...] = ()
    sweep: float = 0.0  # how soft the wall/floor join is; 0 is a sharp horizon
    near: bool = False  # the wall stands close behind the subject, so it catches a drop shadow
    vignette: float = 0.30
    glow: float = 0.12


def normalise(prompt: str) -> str:
    """Lower-case words joined by single spaces: the form that is read and hashed."""
    return " ".join(re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", prompt.lower()))


def seed_of(prompt: str) -> int:
    """A stable seed for the prompt (Python's own hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(normalise(prompt).encode()).digest()[:8], "big")


def read_prompt(prompt: str) -> Look:
    """Resolve scene words, moods and colour names in the prompt into a Look; unknown words give a studio."""
    words = normalise(prompt).split()
    scenes = list(dict.fromkeys(WORDS[w] for w in words if w in WORDS)) or ["studio"]
    wall_scene, wall = _pick(scenes, "wall")
    floor_scene, floor = _pick(scenes, "floor")
    spec = SCENES[floor_scene]
    look = Look(
        wall=wall, floor=floor, texture=spec.get("texture", ""), sweep=spec.get("sweep", 0.0),
        motifs=tuple(m for s in scenes for m in SCENES[s].get("motifs", ())),
        near=SCENES[wall_scene].get("near", False), glow=0.22 if SCENES[wall_scene].get("near") else 0.1,
    )
    # a colour or tone right before the floor's material ("black marble", "dark wood") is that material's
    material = {i for i, w in enumerate(words[:-1])
                if (w in COLOURS or w in TONES) and WORDS.get(words[i + 1]) == floor_scene != "studio"}
    for i in sorted(material):
        base = np.array(COLOURS.get(words[i], look.floor[0]))
        c = base * TONES.get(words[i], 1.0)
        look = replace(look, floor=_rgb((c * 0.85 + np.array(look.floor[0]) * 0.15, c * 0.8)))
    colours = [COLOURS[w] for i, w in enumerate(words) if w in COLOURS and i not in material]
    look = _colour(look, colours, plain=scenes == ["studio"])
    moods = (m for i, w in enumerate(words) if i not in material for m, ws in MOODS.items() if w in ws.split())
    for mood in dict.fromkeys(moods):
        look = _mood(look, mood)
    return look


def _pick(scenes: list[str], part: str) -> tuple[str, tuple]:
    # a firm part from any scene word beats a weak one; among equals the earlier word wins
    for key in (part, part + "_weak"):
        for scene in scenes:
            if key in SCENES[scene]:
                return scene, SCENES[scene][key]
    return "studio", SCENES["studio"][part]


def _colour(look: Look, colours: list[Rgb], plain: bool) -> Look:
    """Colour names paint a studio backdrop outright and tint a scene."""
    if not colours:
        return look
    first, last = np.array(colours[0]), np.array(colours[-1])
    if plain:
        wall = (first + (1 - first) * 0.12, first, (first + last) * 0.46)
        return replace(look, wall=_rgb(wall), floor=_rgb((last * 0.9, last * 0.72)))
    wall = [np.array(c) * 0.7 + first * 0.3 for c in look.wall]
    return replace(look, wall=_rgb(wall), floor=_rgb([np.array(c) * 0.8 + last * 0.2 for c in look.floor]))


def _mood(look: Look, mood: str) -> Look:
    def each(fn) -> Look:
        return replace(look, wall=_rgb(fn(np.array(c)) for c in look.wall),
                       floor=_rgb(fn(np.array(c)) for c in look.floor))

    if mood == "dark":
        return replace(each(lambda c: c * 0.32), vignette=look.vignette + 0.15)
    if mood == "bright":
        return replace(each(lambda c: c + (1 - c) * 0.25), vignette=look.vignette * 0.6, glow=look.glow + 0.08)
    tones = {
        "warm": lambda c: c * (1.08, 1.0, 0.84),
        "cool": lambda c: c * (0.88, 0.97, 1.08),
        "pastel": lambda c: _saturate(c, 0.5) * 0.6 + 0.4,
        "vivid": lambda c: _saturate(c, 1.45),
        "muted": lambda c: _saturate(c, 0.55),
    }
    return each(tones[mood])


def _saturate(c: np.ndarray, amount: float) -> np.ndarray:
    grey = float(c @ (0.299, 0.587, 0.114))
    return grey + (c - grey) * amount


def _rgb(colours) -> tuple:
    return tuple(tuple(float(v) for v in np.clip(c, 0.0, 1.0)) for c in colours)


def render_backdrop(size: tuple[int, int], prompt: str, mask: Image.Image | None = None) -> Image.Image:
    """Paint an RGB backdrop of `size` for `prompt`; `mask` (the subject, "L") places floor and shadow.

    Scene words choose the wall and floor, moods and colour names tint them, and the same prompt always
    gives the same picture; a prompt with no known word gives a neutral studio sweep.
    """
    w, h = size
    look, rng = read_prompt(prompt), np.random.default_rng(seed_of(prompt))
    scale = min(1.0, WORK_EDGE / max(w, h))
    ww, wh = max(16, round(w * scale)), max(16, round(h * scale))
    subject = _subject(mask, (ww, wh))
    horizon = _horizon(subject)
    ys = (np.arange(wh, dtype=np.float32)[:, None] + 0.5) / wh
    xs = (np.arange(ww, dtype=np.float32)[None, :] + 0.5) / ww
    canvas = _mix(_wall(look, ys, horizon), _floor(look, xs, ys, horizon, ww / wh, rng),
                  _smoothstep(horizon - look.sweep - 0.5 / wh, horizon + look.sweep + 0.5 / wh, ys))
    for motif in look.motifs:
        canvas = MOTIFS[motif](canvas, xs, ys, horizon, subject, rng)
    canvas = _light(canvas, look, xs, ys, subject)
    if subject is not None:
        canvas = _shadow(canvas, look, subject, horizon)
    if (ww, wh) != (w, h):
        canvas = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_CUBIC)
    canvas += rng.standard_normal((h, w), dtype=np.float32)[..., None] * 0.012  # film grain; also dithers
    np.maximum(canvas, 0.0, out=canvas)
    return Image.fromarray(cv2.convertScaleAbs(canvas, alpha=255.0, beta=0.5), "RGB")  # rounds and saturates


@dataclass(frozen=True)
class Subject:
    """Where the subject sits in the working frame, in fractions of width and height."""

    matte: np.ndarray
    top: float
    bottom: float
    centre: float
    left: float
    right: float
    foot_left: float
    foot_right: float


def _subject(mask: Image.Image | None, size: tuple[int, int]) -> Subject | None:
    if mask is None:
        return None
    matte = cv2.resize(np.asarray(mask.convert("L"), np.float32) / 255.0, size, interpolation=cv2.INTER_AREA)
    rows, cols = np.flatnonzero(matte.max(1) > 0.5), np.flatnonzero(matte.max(0) > 0.5)
    if rows.size == 0:
        return None
    wh, ww = matte.shape
    foot = np.flatnonzero(matte[max(rows[0], rows[-1] - max(2, (rows[-1] - rows[0]) // 12)) :].max(0) > 0.5)
    centre = float((matte.sum(0) * np.arange(ww)).sum() / matte.sum()) / ww
    return Subject(matte, rows[0] / wh, (rows[-1] + 1) / wh, centre, cols[0] / ww, (cols[-1] + 1) / ww,
                   foot[0] / ww, (foot[-1] + 1) / ww)


def _horizon(subject: Subject | None) -> float:
    # the subject should stand on the floor: the horizon sits a little above its base
    if subject is None:
        return 0.62
    height = subject.bottom - subject.top
    if subject.bottom > 0.985:  # cut by the frame, like a portrait: put the horizon behind the body
        return float(np.clip(subject.top + 0.55 * height, 0.45, 0.75))
    return float(np.clip(subject.bottom - 0.15 * height - 0.03, 0.3, 0.8))


def _smoothstep(lo: float, hi: float, t: np.ndarray) -> np.ndarray:
    t = np.clip((t - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = t[..., None] if t.ndim == 2 else t
    return a * (1 - t) + b * t


def _wall(look: Look, ys: np.ndarray, horizon: float) -> np.ndarray:
    top, middle, low = (np.array(c, np.float32) for c in look.wall)
    upper = _mix(top, middle, _smoothstep(0.0, horizon * 0.55, ys)[..., None])
    return _mix(upper, low, _smoothstep(horizon * 0.55, horizon, ys)[..., None])


def _floor(look: Look, xs, ys, horizon: float, aspect: float, rng) -> np.ndarray:
    far, near = (np.array(c, np.float32) for c in look.floor)
    depth = np.clip((ys - horizon) / (1 - horizon), 1e-3, 1.0)
    base = _mix(far, near, (depth**0.8)[..., None]) * np.ones_like(xs)[..., None]
    if not look.texture:
        return base
    z = 1.0 / (depth * 0.92 + 0.08)  # distance from the viewer: 1 at the bottom edge, 12.5 at the horizon
    u = (xs - 0.5) * z * aspect
    pattern = TEXTURES[look.texture](u, z * np.ones_like(xs), rng)[..., None]
    if look.texture == "marble" and far.mean() < 0.35:  # dark stone shows pale veins
        return base * (2.0 - pattern) + (1.0 - pattern) * 0.8
    return base * pattern


def _noise(rng, u: np.ndarray, z: np.ndarray, scale: float) -> np.ndarray:
    """Smooth fractal noise in 0..1 sampled at world coordinates (u, z)."""
    field = sum(cv2.resize(rng.random((n, n), dtype=np.float32), (256, 256), interpolation=cv2.INTER_CUBIC) / k
                for n, k in ((4, 1), (8, 2), (16, 4), (32, 8)))
    field = (field - field.min()) / (np.ptp(field) + 1e-6)
    mx, my = (u * scale * 256 + 128).astype(np.float32), (z * scale * 256).astype(np.float32)
    return cv2.remap(field, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _fade(z: np.ndarray) -> np.ndarray:
    # detail dissolves towards the horizon, where it would only alias
    return np.clip(1.5 - z / 5.0, 0.0, 1.0)


def _marble(u, z, rng):
    a, c = 0.5 * u + 0.35 * z, -0.25 * u + 0.9 * z  # stretched on a diagonal, so the veins flow one way
    fade = _noise(rng, u * 0.5, z * 0.5, 0.2)
    # ridged noise: veins are where a smooth field crosses its middle, thin and branching
    veins = (1 - np.abs(2 * _noise(rng, a, c * 0.5, 0.3) - 1)) ** 18 * (0.1 + 0.25 * _smoothstep(0.3, 0.8, fade))
    veins += (1 - np.abs(2 * _noise(rng, a * 2.0 + 3, c * 1.2, 0.3) - 1)) ** 40 * 0.08
    return 1.0 + (fade - 0.5) * 0.06 - veins * _fade(z)


def _lines(coord: np.ndarray, spacing: float, width: float) -> np.ndarray:
    distance = np.abs((coord / spacing + 0.5) % 1.0 - 0.5) * spacing
    return np.exp(-((distance / width) ** 2))


def _concrete(u, z, rng):
    joints = np.maximum(_lines(u + 0.9, 1.8, 0.015), _lines(z, 1.8, 0.015 * z))  # no joint right under the subject
    return 1.0 + (_noise(rng, u, z, 0.2) - 0.5) * 0.14 - joints * 0.3 * _fade(z)


def _planks(u, z, rng):
    plank = np.floor(u / 0.3 + 0.5)  # a board, not a seam, runs under the subject
    tone = 1.0 + 0.08 * np.sin(plank * 12.9898)  # each board a slightly different shade
    grain = np.sin(z * 18.0 + _noise(rng, u, z, 0.3) * 10.0 + plank * 3.0) * 0.05
    return tone + grain * _fade(z) - _lines(u + 0.15, 0.3, 0.003 * z) * 0.3 * _fade(z)


def _sand(u, z, rng):
    return 1.0 + (_noise(rng, u, z, 0.25) - 0.5) * 0.10 + np.sin(z * 14.0 + u * 2.0) * 0.015 * _fade(z)


def _snow(u, z, rng):
    return 1.0 + (_noise(rng, u, z, 0.15) - 0.5) * 0.06


def _moss(u, z, rng):
    return 1.0 + (_noise(rng, u, z, 0.3) - 0.5) * 0.35


TEXTURES = {"marble": _marble, "concrete": _concrete, "planks": _planks, "sand": _sand, "snow": _snow,
            "moss": _moss}


def _screen(canvas: np.ndarray, light: np.ndarray) -> np.ndarray:
    return 1.0 - (1.0 - canvas) * (1.0 - np.clip(light, 0.0, 1.0))


def _discs(canvas, rng, count: int, radii: tuple[float, float], rows: tuple[float, float],
           colours: list[Rgb], alphas: tuple[float, float], blur: float) -> np.ndarray:
    """A layer of soft round lights (bokeh, stars, flakes) drawn with anti-aliased circles."""
    wh, ww = canvas.shape[:2]
    layer = np.zeros((wh, ww, 3), np.uint8)
    for _ in range(count):
        centre = (int(rng.uniform(0, ww) * 16), int(rng.uniform(*rows) * wh * 16))
        colour = np.array(colours[rng.integers(len(colours))]) * rng.uniform(*alphas) * 255
        radius = int(max(0.5, rng.uniform(*radii) * ww) * 16)
        cv2.circle(layer, centre, radius, colour.tolist(), -1, cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(layer.astype(np.float32) / 255.0, (0, 0), max(0.5, blur * ww))


def _sun(canvas, xs, ys, horizon, subject, rng):
    aspect = canvas.shape[1] / canvas.shape[0]
    sx = 0.74 if subject is None or subject.centre < 0.5 else 0.26  # beside the subject, not behind it
    dx, dy = (xs - sx) * aspect, ys - (horizon - 0.03)
    r = np.hypot(dx, dy)
    above = (ys < horizon).astype(np.float32)[..., None]
    canvas = _screen(canvas, np.exp(-((r / 0.3) ** 2))[..., None] * (0.55, 0.38, 0.20))
    disc = (1 - _smoothstep(0.045, 0.055, r))[..., None] * above  # half set: the sea hides its lower part
    canvas = _mix(canvas, np.array((1.0, 0.95, 0.82), np.float32), disc)
    streak = np.exp(-((dx / 0.07) ** 2) - np.maximum(ys - horizon, 0) / 0.2) * (1 - above[..., 0])
    return _screen(canvas, streak[..., None] * (0.45, 0.32, 0.18))


def _sea(canvas, xs, ys, horizon, subject, rng):
    sky = canvas[max(0, int(horizon * canvas.shape[0]) - 2)].mean(0)
    shore = horizon + 0.12 * (1 - horizon) + 0.004 * np.sin(xs * 37.0 + 1.3)
    water = sky * 0.45 + np.array((0.06, 0.36, 0.48), np.float32) * 0.55
    band = ((ys >= horizon) & (ys < shore)).astype(np.float32)[..., None]
    canvas = _mix(canvas, water * (1.0 - 0.25 * _smoothstep(horizon, shore.max(), ys))[..., None], band)
    foam = np.exp(-(((ys - shore) / 0.004) ** 2))[..., None] * 0.7
    return _mix(canvas, np.array((0.97, 0.97, 0.95), np.float32), foam)


def _windows(canvas, xs, ys, horizon, subject, rng):
    wh, ww = canvas.shape[:2]
    layer = np.zeros((wh, ww), np.float32)
    top, bottom = int(0.07 * wh), int(horizon * 0.72 * wh)
    for i in range(4):
        left, right = int((0.07 + 0.24 * i) * ww), int((0.20 + 0.24 * i) * ww)
        layer[top:bottom, left:right] = 1.0
        layer[top:bottom, (left + right) // 2 - 1 : (left + right) // 2 + 1] = 0.2  # mullions
        for y in np.linspace(top, bottom, 4)[1:-1].astype(int):
            layer[y - 1 : y + 1, left:right] = 0.2
    layer = cv2.GaussianBlur(layer, (0, 0), 0.005 * ww)
    return _mix(canvas, np.array((0.86, 0.89, 0.92), np.float32), layer[..., None] * 0.55)


def _trees(canvas, xs, ys, horizon, subject, rng):
    wh, ww = canvas.shape[:2]
    layer = np.zeros((wh, ww), np.float32)
    for _ in range(14):
        x, width = rng.uniform(-0.02, 1.0), rng.uniform(0.008, 0.045)
        bottom = int((horizon + rng.uniform(0.0, 0.04)) * wh)
        columns = slice(int(x * ww), max(int(x * ww) + 1, int((x + width) * ww)))
        layer[:bottom, columns] = np.maximum(layer[:bottom, columns], min(0.9, 0.3 + width * 12))
    layer = cv2.GaussianBlur(layer, (0, 0), 0.006 * ww)  # out of focus, like a real background
    bark = canvas[wh // 2].mean(0) * 0.45 + np.array((0.12, 0.09, 0.07), np.float32) * 0.55
    return _mix(canvas, bark, layer[..., None])


def _leaves(canvas, xs, ys, horizon, subject, rng):
    colours = [(0.80, 0.88, 0.45), (0.95, 0.92, 0.60), (0.55, 0.75, 0.35)]
    return _screen(canvas, _discs(canvas, rng, 28, (0.01, 0.04), (0.0, horizon), colours, (0.08, 0.25), 0.008))


def _lights(canvas, xs, ys, horizon, subject, rng):
    colours = [(1.0, 0.78, 0.40), (1.0, 0.55, 0.30), (0.45, 0.75, 1.0), (0.95, 0.45, 0.75), (1.0, 0.92, 0.75)]
    layer = _discs(canvas, rng, 36, (0.008, 0.045), (0.05, horizon * 0.98), colours, (0.25, 0.7), 0.003)
    row = int(horizon * canvas.shape[0])
    # a wet street: the lights mirrored under the horizon, smeared and dimmed
    mirrored = np.zeros_like(layer)
    reflected = layer[max(0, 2 * row - canvas.shape[0]) : row][::-1]
    mirrored[row : row + len(reflected)] = reflected
    mirrored = cv2.GaussianBlur(mirrored, (0, 0), sigmaX=0.004 * canvas.shape[1], sigmaY=0.02 * canvas.shape[0])
    return _screen(canvas, layer + mirrored * 0.35)


def _stars(canvas, xs, ys, horizon, subject, rng):
    return _screen(canvas, _discs(canvas, rng, 240, (0.0004, 0.0012), (0.0, horizon), [(1, 1, 1)], (0.3, 1.0), 0.0))


def _flakes(canvas, xs, ys, horizon, subject, rng):
    return _screen(canvas, _discs(canvas, rng, 280, (0.0008, 0.0035), (0.0, 1.0), [(1, 1, 1)], (0.35, 0.85), 0.0008))


MOTIFS = {"sun": _sun, "sea": _sea, "windows": _windows, "trees": _trees, "leaves": _leaves, "lights": _lights,
          "stars": _stars, "flakes": _flakes}


def _light(canvas, look: Look, xs, ys, subject: Subject | None) -> np.ndarray:
    """A soft key light on the wall behind the subject, and falloff towards the corners."""
    cx, cy = (0.5, 0.4) if subject is None else (subject.centre, subject.top + 0.3 * (subject.bottom - subject.top))
    glow = np.exp(-(((xs - cx) / 0.45) ** 2) - ((ys - cy) / 0.4) ** 2)
    canvas = canvas + (1.0 - canvas) * (glow * look.glow)[..., None]
    corner = np.hypot(xs - 0.5, ys - 0.5) / np.sqrt(0.5)
    return canvas * (1.0 - look.vignette * _smoothstep(0.35, 1.0, corner))[..., None]


def _blob(dx: np.ndarray, dy: np.ndarray, rx: float, ry: float) -> np.ndarray:
    return np.exp(-((dx / rx) ** 2) - (dy / ry) ** 2)


def _shadow(canvas, look: Look, s: Subject, horizon: float) -> np.ndarray:
    """A contact shadow where the subject meets the floor, and a soft drop shadow on a near wall."""
    wh, ww = canvas.shape[:2]
    ys, xs = np.ogrid[0:wh, 0:ww]
    ys, xs = (ys + 0.5) / wh, (xs + 0.5) / ww
    shade = np.zeros((wh, ww), np.float32)
    height = s.bottom - s.top
    if horizon < s.bottom <= 0.985:  # the base is in the frame and on the floor
        cx, half = (s.foot_left + s.foot_right) / 2, (s.foot_right - s.foot_left) / 2
        contact = _blob(xs - cx, ys - s.bottom + 0.004, half * 1.1 + 0.01, 0.01 + 0.02 * height) ** 2
        wide = _blob(xs - s.centre, ys - s.bottom, (s.right - s.left) * 0.6 + 0.03, 0.03 + 0.07 * height)
        shade = np.maximum(contact * 0.55, wide * 0.28).astype(np.float32)
    if look.near:
        shift = np.float32([[1, 0, 0.012 * ww], [0, 1, 0.015 * wh]])
        drop = cv2.GaussianBlur(cv2.warpAffine(s.matte, shift, (ww, wh)), (0, 0), 0.025 * ww) * 0.2
        shade = 1.0 - (1.0 - shade) * (1.0 - drop)
    return canvas * (1.0 - shade[..., None] * np.array((0.80, 0.82, 0.86), np.float32))
