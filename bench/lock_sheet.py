"""Measure the subject lock (services.subject_lock) and draw its contact sheet.

The editor is the loopback stand-in's `render_edit` (tests.novita_stub): about one megapixel, sides multiples of
16, its frame painted a prompt colour, the whole picture redrawn. Printed: the shape agreement (IoU) of kept,
recoloured and moved subjects, which LOCK_MIN_IOU is chosen from; per sheet row the agreement, whether the
subject was laid back and how far its pixels are from the photo's; the time of one call at 2048 × 1536.

The stand-in's flat painted frame makes the subject model read some pictures as one framed "subject", which
no real scene does; so kept and recoloured subjects are also measured on the same composite with another real
background, redrawn as the stand-in redraws but with no frame.

    python -m bench.lock_sheet [--quick] [--sheet PATH]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from bench import real_photos
from services import offline, subject_model
from services.subject_lock import LOCK_MIN_IOU, fit_to, lay_subject_back
from tests.novita_stub import render_edit
from tests.novita_tasks import edit_size

SHEET = os.path.join("artifacts", "lock_contact_sheet.png")
SIZE, TIMING_SIZE = (640, 480), (2048, 1536)
PROMPT = "on a sunny beach at dusk"
TILE = 240  # the sheet's row height
BACKGROUNDS = list(real_photos.BACKGROUNDS)
# Sheet rows from the composites: (fill, old background, shape, shadow) and the new scene's background
SHEET_COMPOSITES = [(("coat", "lawn-and-sky", "horse", False), "wood-table"),
                    (("fur", "launch-towers", "horse", True), "bokeh"),
                    (("space-suit", "gravel", "close-up", False), "garage")]
SHEET_PHOTOS = ("sample: Red mug on a studio sweep", "sample: Potted plant", "motorcycle")


def edited(photo: Image.Image, subject: str = "kept") -> Image.Image:
    """The stand-in editor's answer, fitted to the photo."""
    return fit_to(Image.open(io.BytesIO(render_edit(photo, PROMPT, "png", subject=subject))), photo.size)


def redrawn(rgb: np.ndarray) -> Image.Image:
    """A new scene as the editor answers it but with no painted frame: at its size, blurred, green moved 6 levels;
    fitted back to the photo."""
    size = (rgb.shape[1], rgb.shape[0])
    red, green, blue = Image.fromarray(rgb).resize(edit_size(size), Image.Resampling.BICUBIC).split()
    blur = ImageFilter.GaussianBlur(0.8)
    green = green.point(lambda v: v + 6 if v < 250 else v - 6)
    return fit_to(Image.merge("RGB", (red.filter(blur), green, blue.filter(blur))), size)


def elsewhere(case: tuple[str, str, str, bool], size: tuple[int, int], seed: int) -> tuple[np.ndarray, str]:
    """The same subject (same silhouette, same fill) on another real background: what an editor that kept the
    subject and replaced the background would paint, but exact."""
    other = BACKGROUNDS[(BACKGROUNDS.index(case[1]) + 4) % len(BACKGROUNDS)]
    return real_photos.composite((case[0], other, case[2], case[3]), size, seed)[0], other


def recoloured(rgb: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The subject's channels turned round (R -> G -> B -> R) in place, its soft edge with it."""
    weight = cv2.GaussianBlur(truth.astype(np.float32), (0, 0), 0.7)[..., None]
    return (rgb[..., [2, 0, 1]] * weight + rgb * (1 - weight) + 0.5).astype(np.uint8)


def distribution(quick: bool) -> dict[str, list[float]]:
    """The agreement of each kind of edit over the composites and the real photos, printed per case."""
    groups: dict[str, list[float]] = {}
    for case in real_photos.cases(quick):
        photo, truth = real_photos.composite(case, SIZE, seed=7)
        image, line = Image.fromarray(photo), []
        scene, other = elsewhere(case, SIZE, seed=7)
        scenes = {subject: edited(image, subject) for subject in ("kept", "recoloured", "moved")}
        scenes |= {"new background, kept": redrawn(scene),
                   "new background, recoloured": redrawn(recoloured(scene, truth))}
        for kind, edit in scenes.items():
            agreement = lay_subject_back(image, edit).agreement
            groups.setdefault(kind if kind.startswith("new") else f"stand-in, {kind}", []).append(agreement)
            line.append(f"{kind.replace('new background, ', 'new-bg-')}={agreement:.2f}")
        print(f"iou {real_photos.case_name(case)} (new background: {other}):", " ".join(line))
    for name, photo in real_photos.photos().items():
        image, line = Image.fromarray(photo), []
        for subject in ("kept", "recoloured", "moved"):
            agreement = lay_subject_back(image, edited(image, subject)).agreement
            groups[f"stand-in, {subject}"].append(agreement)
            line.append(f"{subject}={agreement:.2f}")
        print(f"iou photo {name}:", " ".join(line))
    return groups


def summary(groups: dict[str, list[float]]) -> None:
    for kind, values in groups.items():
        low, p10, median, high = np.percentile(values, [0, 10, 50, 100])
        locked = np.mean(np.asarray(values) >= LOCK_MIN_IOU)
        print(f"iou {kind:<27} n={len(values):>2}  min {low:.2f}  p10 {p10:.2f}  median {median:.2f}  "
              f"max {high:.2f}  locked at {LOCK_MIN_IOU}: {locked:.0%}")
    print(f"LOCK_MIN_IOU {LOCK_MIN_IOU}: moved subjects reach {max(groups['stand-in, moved']):.2f} at most")


def subject_error(result: Image.Image, photo: np.ndarray, inside: np.ndarray) -> float:
    """The 99th percentile of |result - photo| over the subject's pixels (`inside`)."""
    return float(np.percentile(np.abs(np.asarray(result, np.int16) - photo.astype(np.int16))[inside], 99))


def eroded(mask: np.ndarray, px: int) -> np.ndarray:
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)).astype(bool)


def sheet_rows() -> list[tuple[str, np.ndarray, Image.Image, Image.Image, np.ndarray]]:
    """(label, photo, scene, result, subject mask) per sheet row; prints each row's figures."""
    rows = []
    items = [(real_photos.case_name(case), *real_photos.composite(case, SIZE, seed=5), case, new)
             for case, new in SHEET_COMPOSITES]
    photos = real_photos.photos()
    items += [(name, photos[name], None, None, None) for name in SHEET_PHOTOS if name in photos]
    for name, photo, truth, case, new in items:
        image = Image.fromarray(photo)
        if case is not None:  # the same subject on another real background, through the editor
            scene = edited(Image.fromarray(real_photos.composite((*case[:1], new, *case[2:]), SIZE, seed=5)[0]))
            name += f" -> {new}"
        else:  # the offline engine's new backdrop around the subject, through the editor
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            scene = edited(Image.open(io.BytesIO(offline.replace_background(buffer.getvalue(), PROMPT))))
            truth = offline.subject_layers(image)[1] == 255  # no true mask: the solid part of the photo's own
        start = time.perf_counter()
        result = lay_subject_back(image, scene)
        seconds = time.perf_counter() - start
        inside = eroded(truth, 3)
        error, redraw = subject_error(result.image, photo, inside), subject_error(scene, photo, inside)
        print(f"row {name}: {photo.shape[1]}x{photo.shape[0]} iou {result.agreement:.3f} locked {result.locked} "
              f"subject p99 error {error:.0f} (scene's {redraw:.0f}) {seconds * 1000:.0f} ms")
        label = f"{name}   IoU {result.agreement:.2f}  {'locked' if result.locked else 'NOT locked'}  p99 {error:.0f}"
        rows.append((label, photo, scene, result.image, truth))
    return rows


def edge_window(photo: np.ndarray, scene: Image.Image, truth: np.ndarray, side: int) -> tuple[int, int]:
    """The top-left corner of a `side` square on the subject's edge where the old and new backgrounds differ most."""
    t = truth.astype(np.uint8)
    ring = cv2.dilate(t, np.ones((9, 9), np.uint8)) > cv2.erode(t, np.ones((9, 9), np.uint8))
    contrast = np.linalg.norm(photo.astype(np.float32) - np.asarray(scene, np.float32), axis=2) * ring
    y, x = np.unravel_index(np.argmax(cv2.blur(contrast, (side, side))), contrast.shape)
    h, w = truth.shape
    return int(np.clip(y - side // 2, 0, h - side)), int(np.clip(x - side // 2, 0, w - side))


def write_sheet(rows, path: str) -> None:
    """Per row: photo | editor's scene | locked result | the result's edge at 3x."""
    strips = []
    for label, photo, scene, result, truth in rows:
        h, w = photo.shape[:2]
        size = (round(w * TILE / h), TILE)
        side = TILE // 3
        y, x = edge_window(photo, scene, truth, side)
        crop = np.asarray(result)[y : y + side, x : x + side]
        shrink = Image.Resampling.LANCZOS
        tiles = [Image.fromarray(photo).resize(size, shrink), scene.resize(size, shrink), result.resize(size, shrink),
                 Image.fromarray(cv2.resize(crop, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST))]
        strip = Image.new("RGB", (sum(t.width for t in tiles) + 10 * len(tiles) + 10, TILE + 26), "white")
        left = 10
        for tile in tiles:
            strip.paste(tile, (left, 22))
            left += tile.width + 10
        ImageDraw.Draw(strip).text((10, 5), label, fill=(0, 0, 0))
        strips.append(strip)
    sheet = Image.new("RGB", (max(s.width for s in strips), sum(s.height for s in strips)), "white")
    top = 0
    for strip in strips:
        sheet.paste(strip, (0, top))
        top += strip.height
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sheet.save(path)


def timing(runs: int) -> None:
    """fit_to from the editor's size and lay_subject_back at 2048 x 1536, median of `runs` after a warm-up."""
    case = ("fur", "launch-towers", "horse", True)
    photo = Image.fromarray(real_photos.composite(case, TIMING_SIZE, seed=1)[0])
    answer = Image.open(io.BytesIO(render_edit(photo, PROMPT, "png")))
    answer.load()
    lay_subject_back(photo, fit_to(answer, photo.size))  # loads the model: not a call's cost
    fits, lays, model = [], [], []
    for _ in range(runs):
        start = time.perf_counter()
        scene = fit_to(answer, photo.size)
        fits.append(time.perf_counter() - start)
        start = time.perf_counter()
        lay_subject_back(photo, scene)
        lays.append(time.perf_counter() - start)
        start = time.perf_counter()
        subject_model.shared().probability(np.asarray(scene.resize((512, 384), Image.Resampling.BOX)))
        model.append(time.perf_counter() - start)
    print(f"time {TIMING_SIZE[0]}x{TIMING_SIZE[1]} (editor answer {answer.size[0]}x{answer.size[1]}): "
          f"fit_to {statistics.median(fits) * 1000:.0f} ms, lay_subject_back {statistics.median(lays) * 1000:.0f} ms "
          f"(two subject-model runs, one alone {statistics.median(model) * 1000:.0f} ms); median of {runs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick set of composites (14, not 36)")
    parser.add_argument("--sheet", default=SHEET, help=f"where to write the contact sheet (default {SHEET})")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus (times grow with it)")
    summary(distribution(args.quick))
    write_sheet(sheet_rows(), args.sheet)
    print(f"contact sheet {args.sheet}")
    timing(3 if args.quick else 5)


if __name__ == "__main__":
    main()
