"""Measure the offline engine: cut-out IoU per background kind, and seconds per 2 MP photo.

The evaluation set is built here, so nothing is downloaded: subjects with known masks (the horse
silhouette from scikit-image plus drawn shapes) are filled with crops of scikit-image's public-domain
photos and composited onto plain, gradient and textured backgrounds.

    python -m bench.offline_eval [--quick]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

import cv2
import numpy as np
from PIL import Image
from skimage import data

from services import offline
from services.images import encode

AIMS = {"plain": 0.95, "gradient": 0.90, "textured": 0.80}
SECONDS_AIM = 1.5
TIMING_SIZE = (1632, 1224)  # 2 MP, the size the app prepares a phone photo to
SUBJECTS = ("horse", "ellipse", "bottle", "person")
FILLS = ("astronaut", "chelsea", "coffee", "rocket")
TEXTURES = ("grass", "gravel", "brick")


def evaluate(quick: bool = False, *, timed: bool = True) -> dict:
    """Return {"iou": {kind: mean IoU}, "worst": {kind: min IoU}, "seconds": {part: s}, "images": n}.

    `quick` uses fewer, smaller images (what the tests run); `timed=False` skips the 2 MP timing (seconds
    is then None), for callers that only keep a floor under the quality.
    """
    per_kind = 4 if quick else 12
    size = (480, 360) if quick else (800, 600)
    scores: dict[str, list[float]] = {kind: [] for kind in AIMS}
    for k, kind in enumerate(AIMS):
        for i in range(per_kind):
            photo, truth = make_scene(kind, i, size, seed=1000 * k + i)
            predicted = np.asarray(offline.cut_out(Image.fromarray(photo))) >= 128
            scores[kind].append(iou(predicted, truth))
    return {
        "iou": {kind: float(np.mean(v)) for kind, v in scores.items()},
        "worst": {kind: float(np.min(v)) for kind, v in scores.items()},
        "seconds": time_per_image(runs=1 if quick else 5) if timed else None,
        "images": per_kind * len(AIMS),
    }


def iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    union = np.count_nonzero(predicted | truth)
    return np.count_nonzero(predicted & truth) / union if union else 1.0


def time_per_image(runs: int) -> dict[str, float]:
    """Median wall times at 2 MP: the whole replace_background call (decode, cut, backdrop, composite, PNG),
    and two of its parts, the cut-out and the PNG encoding (services.images.encode, shared with Novita)."""
    photo, _ = make_scene("gradient", 0, TIMING_SIZE, seed=7)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", quality=90)
    times: dict[str, list[float]] = {"whole": [], "cut": [], "png": []}
    for _ in range(runs):
        start = time.perf_counter()
        result = offline.replace_background(buffer.getvalue(), "on a marble counter, soft light", "png")
        times["whole"].append(time.perf_counter() - start)
        start = time.perf_counter()
        offline.cut_out(Image.fromarray(photo))
        times["cut"].append(time.perf_counter() - start)
        start = time.perf_counter()
        encode(Image.open(io.BytesIO(result)).convert("RGB"), "png")
        times["png"].append(time.perf_counter() - start)
    return {part: statistics.median(values) for part, values in times.items()}


def make_scene(kind: str, index: int, size: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A photo (uint8 RGB) and its true subject mask (bool) for one background kind."""
    rng = np.random.default_rng(seed)
    w, h = size
    matte = subject_matte(SUBJECTS[index % len(SUBJECTS)], size, rng)
    fill = cover(load_photo(FILLS[(index // len(SUBJECTS) + index) % len(FILLS)]), size)
    background = make_background(kind, index, size, rng)
    a = matte[..., None]
    photo = fill * a + background * (1.0 - a) + rng.normal(0.0, 2.0, (h, w, 3))  # a little sensor noise
    return np.clip(photo, 0, 255).astype(np.uint8), matte >= 0.5


def subject_matte(name: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A soft (anti-aliased) float mask of one subject, drawn 4x larger and reduced."""
    w, h = size
    big = np.zeros((4 * h, 4 * w), np.uint8)
    W, H = 4 * w, 4 * h
    cx = int(W * rng.uniform(0.4, 0.6))
    if name == "horse":
        horse = (~data.horse()).astype(np.uint8) * 255
        scale = rng.uniform(0.5, 0.7) * min(W / horse.shape[1], H / horse.shape[0])
        horse = cv2.resize(horse, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        y0, x0 = int(H * 0.9) - horse.shape[0], cx - horse.shape[1] // 2
        big[y0 : y0 + horse.shape[0], x0 : x0 + horse.shape[1]] = horse
    elif name == "ellipse":
        axes = (int(W * rng.uniform(0.18, 0.28)), int(H * rng.uniform(0.25, 0.35)))
        cv2.ellipse(big, (cx, H // 2), axes, float(rng.uniform(-20, 20)), 0, 360, 255, -1)
    elif name == "bottle":
        bw, top = int(W * 0.12), int(H * 0.35)
        cv2.rectangle(big, (cx - bw, top), (cx + bw, int(H * 0.88)), 255, -1)
        cv2.circle(big, (cx, top), bw, 255, -1)
        cv2.rectangle(big, (cx - bw // 3, int(H * 0.12)), (cx + bw // 3, top), 255, -1)
    else:  # a head-and-shoulders portrait cut by the bottom of the frame
        cv2.circle(big, (cx, int(H * 0.35)), int(H * 0.16), 255, -1)
        cv2.ellipse(big, (cx, H), (int(W * 0.3), int(H * 0.42)), 0, 180, 360, 255, -1)
        cv2.rectangle(big, (cx - int(H * 0.07), int(H * 0.45)), (cx + int(H * 0.07), int(H * 0.62)), 255, -1)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def load_photo(name: str) -> np.ndarray:
    return getattr(data, name)()[..., :3].astype(np.float32)


def cover(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize and centre-crop `picture` so it covers `size` exactly."""
    w, h = size
    ph, pw = picture.shape[:2]
    scale = max(w / pw, h / ph)
    resized = cv2.resize(picture, (int(np.ceil(pw * scale)), int(np.ceil(ph * scale))))
    y0, x0 = (resized.shape[0] - h) // 2, (resized.shape[1] - w) // 2
    return resized[y0 : y0 + h, x0 : x0 + w]


def make_background(kind: str, index: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    w, h = size
    first, second = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    if kind == "plain":
        return np.broadcast_to(first, (h, w, 3)).astype(np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "gradient":
        if index % 2:  # radial, centred somewhere in the frame
            cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
            t = np.hypot(xs - cx, ys - cy) / np.hypot(w, h)
        else:
            angle = rng.uniform(0, np.pi)
            t = (xs * np.cos(angle) + ys * np.sin(angle)) / (w + h) + 0.5
        t = np.clip((t - t.min()) / (np.ptp(t) + 1e-6), 0, 1)[..., None]
        return (first * (1 - t) + second * t).astype(np.float32)
    texture = cover(getattr(data, TEXTURES[index % len(TEXTURES)])().astype(np.float32)[..., None], size)
    texture = cv2.GaussianBlur(texture, (0, 0), 1.0)[..., None] / 255.0
    return (first * (1 - texture) + second * texture).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, smaller images (what the tests run)")
    figures = evaluate(quick=parser.parse_args().quick)
    for kind, aim in AIMS.items():
        worst = figures["worst"][kind]
        print(f"iou {kind} {figures['iou'][kind]:.3f} (aim >= {aim:.2f}; worst {worst:.3f})")
    seconds = figures["seconds"]
    print(f"seconds 2mp {seconds['whole']:.2f} (aim <= {SECONDS_AIM}; whole call, PNG out)")
    print(f"seconds 2mp cut-out {seconds['cut']:.2f} (part of the whole call)")
    print(f"seconds 2mp png-encode {seconds['png']:.2f} (part of the whole call)")
    load = os.getloadavg()[0]
    print(f"images {figures['images']}; load average {load:.1f} on {os.cpu_count()} cpus (times grow with it)")


if __name__ == "__main__":
    main()
