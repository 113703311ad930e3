"""Real photos for judging the offline cut-out: composites with a known answer, and a contact sheet.

Composites: a subject silhouette (scikit-image's horse, or a head-and-shoulders portrait) filled with a
crop taken from inside a real subject (a cat's fur, a space suit, a coat, a motorcycle)
and set on a crop of a real photo that holds no subject (launch towers at dusk, a garage, a lawn under
the sky, out-of-focus bokeh, brick, grass, gravel). Some cases add a cast shadow on the ground, which is
not part of the subject, and some are close-ups cut by the frame. The true mask is the silhouette.
`cluttered_cases` (apart from `cases`) set a portrait in front of a motorbike in its garage: a second salient
thing behind the subject.

Contact sheet: the real photos themselves (scikit-image's, Grace Hopper's portrait when matplotlib is
installed, and the app's own samples) cut out by the app's code, for a person to look at.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image, ImageDraw
from skimage import data

Box = tuple[int, int, int, int]  # y0, y1, x0, x1

# crops from inside a subject: every pixel is subject
FILLS: dict[str, tuple[Callable[[], np.ndarray], Box]] = {
    "fur": (data.chelsea, (0, 90, 150, 330)),
    "space-suit": (data.astronaut, (260, 480, 40, 260)),
    "coat": (data.camera, (200, 512, 0, 140)),
    "motorcycle": (lambda: data.stereo_motorcycle()[0], (180, 340, 260, 480)),
}
# crops that hold no subject (photos), or textures tinted into colour
BACKGROUNDS: dict[str, tuple[Callable[[], np.ndarray], Box | None]] = {
    "launch-towers": (data.rocket, (0, 427, 0, 240)),
    "garage": (lambda: data.stereo_motorcycle()[0], (0, 90, 340, 740)),
    "lawn-and-sky": (data.camera, (0, 300, 330, 512)),
    "wood-table": (data.coffee, (100, 400, 470, 600)),
    "bokeh": (data.chelsea, (0, 300, 365, 451)),
    "flag": (data.astronaut, (0, 300, 0, 85)),
    "brick": (data.brick, None),
    "grass": (data.grass, None),
    "gravel": (data.gravel, None),
}
SHAPES = ("horse", "portrait", "close-up")
# photos with a second salient thing behind the subject (a motorbike in its garage): not in `cases`, whose
# figures other lines hold to floors; `cluttered_cases` lists them for the lines that use them
CLUTTERED: dict[str, tuple[Callable[[], np.ndarray], Box | None]] = {
    "motorbike-garage": (lambda: data.stereo_motorcycle()[0], (0, 500, 0, 741)),
}


def cases(quick: bool) -> list[tuple[str, str, str, bool]]:
    """(fill, background, shape, cast shadow) for each composite: every fill on every background (36), or
    for `quick` the 14 where (fill + background) % 5 is 0 or 2 (each fill on 3–4 backgrounds)."""
    out = []
    for f, fill in enumerate(FILLS):
        for b, background in enumerate(BACKGROUNDS):
            if quick and (f + b) % 5 not in (0, 2):
                continue
            shape = SHAPES[(2 * f + b) % len(SHAPES)]
            out.append((fill, background, shape, shape == "horse" and b % 2 == 0))
    return out


def cluttered_cases() -> list[tuple[str, str, str, bool]]:
    """(fill, background, shape, cast shadow) for figures standing in front of a second salient thing."""
    return [(fill, background, "portrait", False) for background in CLUTTERED for fill in ("coat", "space-suit")]


def case_name(case: tuple[str, str, str, bool]) -> str:
    fill, background, shape, shadow = case
    return f"{shape}:{fill}-on-{background}" + ("+shadow" if shadow else "")


def composite(case: tuple[str, str, str, bool], size: tuple[int, int], seed: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """The photo (uint8 RGB) and the true subject mask (bool) of one case."""
    fill_name, background_name, shape, shadow = case
    rng = np.random.default_rng(seed)
    matte = _matte(shape, size, rng)
    fill = _cover(_crop(*FILLS[fill_name]), size)
    background = _background(background_name, size, rng)
    if shadow:
        background = background * (1.0 - 0.55 * _shadow_of(matte))[..., None]
    a = matte[..., None]
    photo = fill * a + background * (1.0 - a) + rng.normal(0.0, 2.0, background.shape)  # sensor noise
    return np.clip(photo, 0, 255).astype(np.uint8), matte >= 0.5


def _crop(load: Callable[[], np.ndarray], box: Box | None) -> np.ndarray:
    picture = load()
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=2)
    picture = picture[..., :3].astype(np.float32)
    if box is None:
        return picture
    y0, y1, x0, x1 = box
    return picture[y0:y1, x0:x1]


def _background(name: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    load, box = BACKGROUNDS[name] if name in BACKGROUNDS else CLUTTERED[name]
    picture = _cover(_crop(load, box), size)
    if box is None:  # a grey texture: tint it between two earthy colours
        first, second = rng.uniform(30, 120, 3), rng.uniform(120, 230, 3)
        t = cv2.GaussianBlur(picture[..., 0], (0, 0), 1.0)[..., None] / 255.0
        picture = first * (1 - t) + second * t
    return picture.astype(np.float32)


def _matte(shape: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A soft (anti-aliased) float mask, drawn 4x larger and reduced."""
    w, h = size
    W, H = 4 * w, 4 * h
    big = np.zeros((H, W), np.uint8)
    if shape == "portrait":  # head and shoulders, cut by the bottom of the frame
        cx = int(W * rng.uniform(0.4, 0.6))
        cv2.circle(big, (cx, int(H * 0.35)), int(H * 0.16), 255, -1)
        cv2.ellipse(big, (cx, H), (int(W * 0.32), int(H * 0.44)), 0, 180, 360, 255, -1)
        cv2.rectangle(big, (cx - int(H * 0.07), int(H * 0.45)), (cx + int(H * 0.07), int(H * 0.62)), 255, -1)
    else:
        horse = (~data.horse()).astype(np.uint8) * 255
        fit = min(W / horse.shape[1], H / horse.shape[0])
        scale = fit * (rng.uniform(0.95, 1.1) if shape == "close-up" else rng.uniform(0.5, 0.75))
        horse = cv2.resize(horse, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        cx = int(W * rng.uniform(0.42, 0.58))
        y0 = int(H * (0.88 if shape == "horse" else 1.04)) - horse.shape[0]
        x0 = cx - horse.shape[1] // 2
        ys, xs = slice(max(0, y0), min(H, y0 + horse.shape[0])), slice(max(0, x0), min(W, x0 + horse.shape[1]))
        big[ys, xs] = horse[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _shadow_of(matte: np.ndarray) -> np.ndarray:
    """A cast shadow on the ground: the silhouette flattened, slanted away from the light, blurred."""
    h, w = matte.shape
    rows = np.flatnonzero(matte.max(1) > 0.5)
    base = float(rows[-1])
    # y' = base + (y - base) * 0.35 (flattened about the feet), x' = x + (base - y) * 0.9 (slanted)
    warp = np.float32([[1, -0.9 * 0.35, 0.9 * 0.35 * base], [0, 0.35, 0.65 * base]])
    shadow = cv2.warpAffine(matte, warp, (w, h))
    shadow = cv2.GaussianBlur(shadow, (0, 0), max(1.0, w / 300))
    return np.clip(shadow, 0.0, 1.0)


def _cover(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize and centre-crop `picture` so it covers `size` exactly."""
    w, h = size
    ph, pw = picture.shape[:2]
    scale = max(w / pw, h / ph)
    resized = cv2.resize(picture, (int(np.ceil(pw * scale)), int(np.ceil(ph * scale))),
                         interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    y0, x0 = (resized.shape[0] - h) // 2, (resized.shape[1] - w) // 2
    return resized[y0 : y0 + h, x0 : x0 + w]


# ---------------------------------------------------------------- the contact sheet


def photos() -> dict[str, np.ndarray]:
    """The real photos at hand: scikit-image's, Grace Hopper's portrait (with matplotlib), the app's samples."""
    found = {
        "astronaut": data.astronaut(), "chelsea (close-up)": data.chelsea(), "rocket": data.rocket(),
        "motorcycle": data.stereo_motorcycle()[0], "coffee": data.coffee(),
        "cameraman": np.repeat(data.camera()[..., None], 3, axis=2),
    }
    try:
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as file:
            found["grace hopper (portrait)"] = np.asarray(Image.open(file).convert("RGB"))
    except (ImportError, OSError, ValueError):
        pass  # matplotlib is optional (bench/requirements.txt)
    from services import samples

    for title in samples.SAMPLES:
        found[f"sample: {title}"] = np.asarray(Image.open(io.BytesIO(samples.sample(title)[1])).convert("RGB"))
    return found


def contact_sheet(cutouts: dict[str, tuple[np.ndarray, np.ndarray]], path: str, tile: int = 300) -> None:
    """Write a PNG with, per photo, the photo and its cut-out on a checkerboard, side by side.

    `cutouts` maps a name to (photo RGB, cut-out RGBA), both uint8 of the same size.
    """
    rows = []
    for name, (photo, cut) in cutouts.items():
        h, w = photo.shape[:2]
        scale = tile / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small, small_cut = cv2.resize(photo, size, interpolation=cv2.INTER_AREA), \
            cv2.resize(cut, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        board = (((np.indices(small.shape[:2]) // 12).sum(0) % 2) * 40 + 195)[..., None].astype(np.float32)
        a = small_cut[..., 3:] / 255.0
        on_board = (small_cut[..., :3] * a + board * (1 - a)).astype(np.uint8)
        row = Image.new("RGB", (2 * tile + 30, tile + 26), "white")
        row.paste(Image.fromarray(small), (10, 22))
        row.paste(Image.fromarray(on_board), (tile + 20, 22))
        ImageDraw.Draw(row).text((10, 5), name, fill=(0, 0, 0))
        rows.append(row)
    columns = 2
    sheet = Image.new("RGB", (columns * rows[0].width, -(-len(rows) // columns) * rows[0].height), "white")
    for i, row in enumerate(rows):
        sheet.paste(row, ((i % columns) * row.width, (i // columns) * row.height))
    sheet.save(path)
