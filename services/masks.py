"""The subject layers of a photo, computed once and reused.

Variants of one photo, a change of framing and a Batch retry all need the same subject: its colours with the
old background taken out of the edge, and its soft alpha (`services.offline.subject_layers`). The model runs
once per photo; the layers are kept in one process-wide cache keyed by the SHA-256 of the photo's bytes.

Entries are kept apart by `scope` (the run's session): a person's pixels are reused for that person only,
so no visitor can learn from a quick answer that another already sent the same photo. The cache is bounded
by bytes, least recently used first out. A photo is cut in the process's one place for full-size work
(`workers.one_photo`), so two threads asking for the same photo at once compute it once: the second waits
there and finds it kept (unless it was dropped meanwhile).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from PIL import Image

from services import offline, workers
from services.images import open_image

__all__ = ["CACHE_BYTES", "Layers", "clear", "from_photo", "held_bytes", "layers"]

# Three 3 MP photos (4 bytes a pixel): the photos people are working on now, whose variants, framings, touch-ups
# and retries come within minutes. Measured with `python -m bench.memory`: at 96 MB the cache was the largest
# part of what a server of five sessions held between runs, on a 690 MB container.
CACHE_BYTES = 36 * 2**20


@dataclass(frozen=True, eq=False)
class Layers:
    """A photo's subject at full size: `subject` (RGB uint8, the old background taken out of the soft edge)
    and `alpha` (uint8), both read-only."""

    subject: np.ndarray
    alpha: np.ndarray

    def __post_init__(self) -> None:
        subject, alpha = self.subject, self.alpha
        if subject.dtype != np.uint8 or alpha.dtype != np.uint8 or subject.ndim != 3 or subject.shape[2] != 3 \
                or subject.shape[:2] != alpha.shape:
            msg = (f"Layers are an HxWx3 and an HxW uint8 array of one size, not {subject.shape} {subject.dtype} "
                   f"and {alpha.shape} {alpha.dtype}.")
            raise ValueError(msg)
        object.__setattr__(self, "subject", _read_only(subject))
        object.__setattr__(self, "alpha", _read_only(alpha))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.alpha.shape[1], self.alpha.shape[0]

    @property
    def nbytes(self) -> int:
        return self.subject.nbytes + self.alpha.nbytes


def layers(data: bytes, scope: str = "") -> Layers:
    """The subject layers of the photo in `data`, from the cache of `scope` (a session) or made now (and
    kept). Bytes that are not a usable photo raise `images.ImageError`; nothing is
    kept for them."""
    key = f"{scope}:{hashlib.sha256(data).hexdigest()}"
    found = _kept_for(key)
    if found is not None:
        return found
    # Made in the process's one place for full-size work, so a second thread asking for the same photo waits
    # there and then finds it kept: it is made once.
    with workers.one_photo():
        found = _kept_for(key)
        if found is not None:
            return found
        made = from_photo(open_image(data))
        with _lock:
            _keep(key, made)
        return made


def from_photo(photo: Image.Image) -> Layers:
    """The subject layers of an opened photo (a PIL image), made now and not cached."""
    subject, alpha = offline.subject_layers(photo)
    return Layers(subject, alpha)


def held_bytes() -> int:
    """Bytes of pixels the cache holds now."""
    with _lock:
        return _held


def clear() -> None:
    """Forget every kept photo (tests, or after the subject model changed); photos being made finish."""
    global _held
    with _lock:
        _kept.clear()
        _held = 0


_lock = threading.Lock()
_kept: OrderedDict[str, Layers] = OrderedDict()  # least recently used first
_held = 0


def _kept_for(key: str) -> Layers | None:
    with _lock:
        found = _kept.get(key)
        if found is not None:
            _kept.move_to_end(key)
        return found


def _keep(key: str, made: Layers) -> None:
    """Keep `made` (the lock held), dropping the least recently used past CACHE_BYTES; a photo bigger than
    the whole bound is not kept."""
    global _held
    if made.nbytes > CACHE_BYTES:
        return
    replaced = _kept.pop(key, None)
    if replaced is not None:
        _held -= replaced.nbytes
    _kept[key] = made
    _held += made.nbytes
    while _held > CACHE_BYTES:
        _, dropped = _kept.popitem(last=False)
        _held -= dropped.nbytes


def _read_only(array: np.ndarray) -> np.ndarray:
    """`array` itself when no one can write it, else a read-only view of it (the caller's flags untouched)."""
    if not array.flags.writeable:
        return array
    view = array.view()
    view.setflags(write=False)
    return view
