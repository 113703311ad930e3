"""Measure the offline engine on real photos: cut-out IoU, a contact sheet, seconds and memory at 2 MP.

Nothing is downloaded. The scored set is `bench.real_photos`' composites (crops from inside real subjects
on crops of real photos with no subject, so the true mask is known); the contact sheet shows the real
photos themselves cut out, for a person to judge. The older synthetic set (drawn shapes filled with
whole photos on plain, gradient and textured grounds) is still printed, as a report only.

    python -m bench.offline_eval [--quick] [--sheet PATH] [--grabcut]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time

import cv2
import numpy as np
from PIL import Image
from skimage import data

from bench import real_photos
from services import offline, subject_model

MEAN_AIM, WORST_AIM = 0.95, 0.85  # real-photo composites
SECONDS_AIM = 1.5  # the whole call for a 2 MP photo
RSS_AIM_MB = 300  # peak RSS with the model over the GrabCut engine's, one 2 MP photo in progress
TIMING_SIZE = (1632, 1224)  # 2 MP, the size the app prepares a phone photo to
SIZE, QUICK_SIZE = (640, 480), (480, 360)
SHEET = os.path.join("artifacts", "offline_contact_sheet.png")
SYNTHETIC_KINDS = ("plain", "gradient", "textured")
SUBJECTS = ("horse", "ellipse", "bottle", "person")
FILLS = ("astronaut", "chelsea", "coffee", "rocket")
TEXTURES = ("grass", "gravel", "brick")


def composites(quick: bool = False) -> dict:
    """Score the cut-out on the real-photo composites: {"cases": {name: IoU}, "mean": m, "worst": w}."""
    size = QUICK_SIZE if quick else SIZE
    scores = {}
    for seed, case in enumerate(real_photos.cases(quick)):
        photo, truth = real_photos.composite(case, size, seed)
        scores[real_photos.case_name(case)] = iou(np.asarray(offline.cut_out(Image.fromarray(photo))) >= 128, truth)
    return {"cases": scores, "mean": float(np.mean(list(scores.values()))),
            "worst": float(np.min(list(scores.values())))}


def synthetic(quick: bool = False) -> dict[str, float]:
    """Mean IoU per background kind on the synthetic set (a report: it does not look like real photos)."""
    size = (480, 360) if quick else (800, 600)
    out = {}
    for k, kind in enumerate(SYNTHETIC_KINDS):
        values = []
        for i in range(4 if quick else 12):
            photo, truth = make_scene(kind, i, size, seed=1000 * k + i)
            values.append(iou(np.asarray(offline.cut_out(Image.fromarray(photo))) >= 128, truth))
        out[kind] = float(np.mean(values))
    return out


def write_contact_sheet(path: str) -> list[str]:
    """Cut out every real photo through the app's own call (offline.transparent) and write the sheet."""
    cutouts = {}
    for name, photo in real_photos.photos().items():
        buffer = io.BytesIO()
        Image.fromarray(photo).save(buffer, "PNG")
        cut = np.asarray(Image.open(io.BytesIO(offline.transparent(buffer.getvalue(), "png"))).convert("RGBA"))
        cutouts[name] = (photo, cut)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    real_photos.contact_sheet(cutouts, path)
    return list(cutouts)


def iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    union = np.count_nonzero(predicted | truth)
    return np.count_nonzero(predicted & truth) / union if union else 1.0


def two_mp_photo() -> bytes:
    """A real photo (the motorcycle in its garage) enlarged to 2 MP, as a quality-90 JPEG."""
    photo = cv2.resize(data.stereo_motorcycle()[0], TIMING_SIZE, interpolation=cv2.INTER_CUBIC)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def seconds_per_photo(runs: int) -> float:
    """Median wall time of the whole replace_background call (decode, cut, backdrop, composite, PNG) at 2 MP."""
    raw, times = two_mp_photo(), []
    offline.replace_background(raw, "warm up", "png")  # the first call loads the model: not a photo's cost
    for _ in range(runs):
        start = time.perf_counter()
        offline.replace_background(raw, "on a marble counter, soft light", "png")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# Run in a fresh interpreter: the app's imports, then one 2 MP photo through the offline engine.
_RSS_CHILD = r"""
import json, re, sys
import streamlit  # noqa: F401 - what a server process of the app holds before any photo
from components import actions, compare, inputs, results, run_view, sidebar  # noqa: F401
from bench.offline_eval import two_mp_photo
from services import offline, subject_model
if sys.argv[1] == "grabcut":
    subject_model.use(None)
offline.replace_background(two_mp_photo(), "on a marble counter, soft light", "png")
# VmHWM, not ru_maxrss: Linux carries the parent's high-water mark into ru_maxrss across fork and exec
peak_kb = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1))
print(json.dumps({"peak_mb": peak_kb / 1024, "model": subject_model.shared() is not None}))
"""


def peak_rss() -> dict[str, float]:
    """Peak RSS (MB) of an app process that ran one 2 MP photo, with the model and with GrabCut alone."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = {}
    for engine in ("model", "grabcut"):
        done = subprocess.run([sys.executable, "-c", _RSS_CHILD, engine], cwd=root, capture_output=True,
                              text=True, timeout=300, check=True)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        if engine == "model" and not figures["model"]:
            raise RuntimeError("the subject model is not installed in this environment")
        out[engine] = figures["peak_mb"]
    return out


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
    parser.add_argument("--quick", action="store_true", help="the test set (18 composites, smaller), fewer runs")
    parser.add_argument("--sheet", default=SHEET, help=f"where to write the contact sheet (default {SHEET})")
    parser.add_argument("--grabcut", action="store_true", help="measure the GrabCut fallback, without the model")
    args = parser.parse_args()
    if args.grabcut:
        subject_model.use(None)
    engine = "subject model" if subject_model.shared() is not None else "GrabCut (no subject model installed)"
    print(f"engine: {engine}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus (times grow with it)")
    scored = composites(args.quick)
    for name, value in scored["cases"].items():
        print(f"iou {name} {value:.3f}")
    print(f"iou real-photo composites mean {scored['mean']:.3f} (aim >= {MEAN_AIM}); "
          f"worst {scored['worst']:.3f} (aim >= {WORST_AIM}); {len(scored['cases'])} composites")
    for kind, value in synthetic(args.quick).items():
        print(f"iou synthetic {kind} {value:.3f} (report only)")
    names = write_contact_sheet(args.sheet)
    print(f"contact sheet {args.sheet}: {len(names)} real photos ({', '.join(names)})")
    seconds = seconds_per_photo(1 if args.quick else 5)
    print(f"seconds 2mp {seconds:.2f} (aim <= {SECONDS_AIM}; whole call, PNG out)")
    if args.grabcut:
        return
    rss = peak_rss()
    over = rss["model"] - rss["grabcut"]
    print(f"peak rss 2mp: model {rss['model']:.0f} MB, GrabCut {rss['grabcut']:.0f} MB, "
          f"+{over:.0f} MB (aim <= +{RSS_AIM_MB} MB)")


if __name__ == "__main__":
    main()
