"""Keep the photo's own subject in an instruction editor's new scene.

An instruction editor (Novita's Qwen-Image Edit) answers at about one megapixel, not at the photo's size, and
redraws the whole frame, so a face, a label's text or a product's colour can come back changed. `fit_to`
brings its image to the photo's size; `lay_subject_back` then lays the photo's own subject, at full
resolution with the offline engine's soft, decontaminated edge, over the new scene, but only where the
editor kept the subject in place: the subject's shape in the scene must agree with its shape in the photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import cv2
import numpy as np
from PIL import Image

from services import masks, offline

__all__ = ["LOCK_MIN_IOU", "LOCK_MIN_STRUCTURE", "Locked", "fit_to", "lay_subject_back"]

LOCK_MIN_IOU = 0.85  # measured: moved or shrunk subjects <= 0.44, kept ones 0.96 median; a 1-3 % shift falls below
# The same shape seen through its edges, where the subject stands in the photo: the correlation of the two
# images' gradient strength there (summed over channels, so a recolouring keeps it). Measured on the quick
# real-texture set against the stand-in's editor: kept or recoloured subjects 0.52-1.00, moved ones at most 0.08.
# It locks a kept subject whose scene the subject model misreads (a frame painted around the picture).
LOCK_MIN_STRUCTURE = 0.4
WHOLE_FRAME = 0.99  # a "subject" this much of the frame is the photo kept whole: laying it back undoes the edit


@dataclass(frozen=True)
class Locked:
    """What `lay_subject_back` made: the scene with the photo's subject laid back, or the scene as it was."""

    image: Image.Image  # RGB, the photo's size
    locked: bool  # True when the photo's subject was laid back
    agreement: float  # IoU of the two subject shapes (0..1)
    structure: float = 0.0  # correlation of the two images' edges where the photo's subject is (-1..1)


def fit_to(scene: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The model's image at the photo's exact size (the model keeps the frame, at its own resolution, so a
    plain resize lines it up with the photo; Lanczos). Returns a new RGB image; a scene already that size
    is converted, not resampled."""
    if len(size) != 2 or not all(isinstance(side, Integral) and side > 0 for side in size):
        msg = f"A size is two whole numbers of pixels above zero, not {size!r}."
        raise ValueError(msg)
    rgb = scene.convert("RGB")  # always a new image, so the caller's is never touched
    size = (int(size[0]), int(size[1]))
    return rgb if rgb.size == size else rgb.resize(size, Image.Resampling.LANCZOS)


def lay_subject_back(photo: Image.Image, scene: Image.Image, layers: masks.Layers | None = None) -> Locked:
    """The model's new scene (already fitted to the photo's size) with the photo's own subject laid over it, at
    full resolution with a soft edge, when the model kept the subject where it was. That is judged by shape, never
    by colour, so an edit that only recoloured the subject in place is still locked: the subject mask of the scene
    against the photo's, or, where the subject model misreads the scene, the scene's edges against the photo's
    where its subject stands. Otherwise the scene as it is, locked=False. `layers` are the photo's subject
    layers when the caller has them already (`masks.layers`, cut once per photo and reused)."""
    if scene.size != photo.size:
        msg = (f"The scene is {scene.size[0]}×{scene.size[1]} and the photo {photo.size[0]}×{photo.size[1]}: "
               "fit the scene to the photo first.")
        raise ValueError(msg)
    scene_rgb = scene.convert("RGB")
    cut = layers if layers is not None else masks.from_photo(photo)  # the photo's own alpha when it has one, else the model's
    subject, alpha = cut.subject, cut.alpha
    small = _working_copy(scene_rgb)
    scene_shape = np.asarray(offline.cut_out(small)) >= 128  # one model run, at the working size
    photo_shape = np.asarray(Image.fromarray(alpha, "L").resize(small.size, Image.Resampling.BOX)) >= 128
    agreement = _iou(photo_shape, scene_shape)
    structure = _structure(_working_copy(photo.convert("RGB")), small, photo_shape)
    kept = agreement >= LOCK_MIN_IOU or structure >= LOCK_MIN_STRUCTURE
    if not kept or photo_shape.mean() >= WHOLE_FRAME:
        return Locked(scene_rgb, False, agreement, structure)
    weight = alpha.astype(np.float32) / 255.0
    out = cv2.blendLinear(subject, np.asarray(scene_rgb), weight, 1.0 - weight)
    return Locked(Image.fromarray(out, "RGB"), True, agreement, structure)


def _structure(photo: Image.Image, scene: Image.Image, where: np.ndarray) -> float:
    """How well the scene's edges follow the photo's where the photo's subject is (a little beyond it)."""
    if photo.size != scene.size or not where.any():
        return 0.0
    near = cv2.dilate(where.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    a, b = _edges(np.asarray(photo))[near], _edges(np.asarray(scene))[near]
    if a.std() < 1e-3 or b.std() < 1e-3:  # a flat subject has no edges to compare
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _edges(rgb: np.ndarray) -> np.ndarray:
    """Gradient strength summed over the channels: the same for a subject whose colours were swapped."""
    total = np.zeros(rgb.shape[:2], np.float32)
    for channel in cv2.split(rgb.astype(np.float32)):
        gx = cv2.Sobel(channel, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(channel, cv2.CV_32F, 0, 1, ksize=3)
        total += cv2.magnitude(gx, gy)
    return total


def _working_copy(image: Image.Image) -> Image.Image:
    """The image reduced so its long edge is the offline engine's working edge (never enlarged)."""
    w, h = image.size
    scale = offline.WORK_EDGE / max(w, h)
    if scale >= 1:
        return image
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 1.0
