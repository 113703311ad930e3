"""Where an app server's memory goes: `streamlit run` with a SIGUSR1 handler that writes a breakdown as JSON.

`python -m bench.memory --diagnose` starts the server through this file and asks for a breakdown after each
phase. The handler finds every large bytes object and array reachable from Python containers and sorts them
by who holds them (the sessions' histories, Streamlit's uploaded and media files, the subject-layer cache,
runs in flight, the rest), and reads glibc's own account (mallinfo2): what the heap holds in use and what it
keeps free without giving it back.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import sys

LARGE = 64 * 1024  # bytes and arrays this big or bigger are counted one by one
REPORT = os.environ.get("BENCH_MEMORY_REPORT", "")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _mallinfo() -> dict[str, float]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    mb = 2**20
    return {"heap_mb": info.arena / mb, "mmapped_mb": info.hblkhd / mb, "in_use_mb": info.uordblks / mb,
            "free_kept_mb": info.fordblks / mb}


def _size(obj) -> int:
    if isinstance(obj, (bytes, bytearray)):
        return len(obj)
    if isinstance(obj, str):
        return len(obj)  # about: a data: URI or a page's markup is ASCII
    if type(obj).__name__ == "Image" and hasattr(obj, "im") and getattr(obj, "_im", None) is not None:
        return obj.width * obj.height * len(obj.getbands())
    if type(obj).__name__ == "ndarray":  # the type first: getattr on some objects loads things (ctypes.cdll)
        return obj.nbytes if obj.base is None else 0  # views hold no memory of their own
    return 0


def _owner(obj):
    """The array that owns a view's memory (arrays are not tracked by gc: a base is found only this way)."""
    while type(obj).__name__ == "ndarray" and obj.base is not None:
        obj = obj.base
    return obj


def _large_reachable() -> dict[int, int]:
    """id → size of every bytes, bytearray and owning ndarray of LARGE bytes or more held by a tracked object."""
    found: dict[int, int] = {}
    for holder in gc.get_objects():
        for obj in map(_owner, gc.get_referents(holder)):
            if id(obj) not in found:
                size = _size(obj)
                if size >= LARGE:
                    found[id(obj)] = size
    return found


def _ids(objects) -> set[int]:
    return {id(obj) for obj in objects if obj is not None}


def breakdown() -> dict[str, object]:
    from services.history import History
    from services.items import HistoryItem, KeptItem

    def held(item):  # the full-size bytes an item holds itself (a KeptItem's are in the store: never read here)
        return None if isinstance(item, KeptItem) else item.result

    large = _large_reachable()
    groups: dict[str, set[int]] = {}
    histories = [obj for obj in gc.get_objects() if isinstance(obj, History)]
    items = {id(item): item for h in histories for item in h._items}  # noqa: SLF001 - a probe reads inside
    groups["history: results"] = _ids(held(item) for item in items.values())
    groups["history: previews and thumbnails"] = _ids(
        b for item in items.values() for b in (item.before_preview, item.after_preview, item.thumbnail))
    loose = [obj for obj in gc.get_objects() if isinstance(obj, HistoryItem) and id(obj) not in items]
    groups["results outside any history"] = _ids(b for item in loose for b in (held(item), item.before_preview,
                                                                                  item.after_preview, item.thumbnail))
    try:
        from streamlit.runtime import Runtime

        runtime = Runtime.instance()
        uploaded = runtime.uploaded_file_mgr.file_storage  # session → file id → UploadedFileRec
        groups["streamlit: uploaded files"] = _ids(rec.data for files in uploaded.values() for rec in files.values())
        media = runtime.media_file_mgr._storage._files_by_id  # noqa: SLF001
        groups["streamlit: media files"] = _ids(getattr(f, "content", None) for f in media.values())
        sessions = len(runtime._session_mgr.list_sessions())  # noqa: SLF001
    except Exception as exc:  # noqa: BLE001 - a probe reports what it could not read
        groups["streamlit: unreadable"] = set()
        sessions = f"{type(exc).__name__}: {exc}"
    try:
        from services import masks

        groups["subject-layer cache"] = _ids(_owner(a) for layers in masks._kept.values()  # noqa: SLF001
                                             for a in (layers.subject, layers.alpha))
    except Exception:  # noqa: BLE001
        pass
    try:
        from services.runs import Run

        runs = [obj for obj in gc.get_objects() if isinstance(obj, Run)]
        groups["runs: uploaded bytes and prepared photos"] = _ids(
            b for run in runs for task in run.tasks
            for b in (task.data, task.prepared.data if task.prepared is not None else None))
        groups["runs: finished items"] = _ids(
            b for run in runs for task in run.tasks if task.item is not None
            for b in (held(task.item), task.item.before_preview, task.item.after_preview, task.item.thumbnail))
    except Exception:  # noqa: BLE001
        runs = []
    mb = 2**20
    counted: set[int] = set()
    result: dict[str, object] = {}
    for name, ids in groups.items():
        mine = ids & large.keys() - counted
        counted |= mine
        result[name] = round(sum(large[i] for i in mine) / mb, 1)
    result["other large bytes and arrays"] = round(sum(s for i, s in large.items() if i not in counted) / mb, 1)
    kinds: dict[str, float] = {}
    by_id = {id(o): o for holder in gc.get_objects() for o in map(_owner, gc.get_referents(holder))
             if id(o) in large}
    for i, size in large.items():
        if i not in counted and i in by_id:
            name = type(by_id[i]).__name__
            kinds[name] = kinds.get(name, 0.0) + size / mb
    result["other, by type"] = {k: round(v, 1) for k, v in kinds.items()}
    result["histories"] = len(histories)
    result["history items"] = len(items)
    result["runs alive"] = len(runs)
    result["streamlit sessions"] = sessions
    result.update({k: round(v, 1) for k, v in _mallinfo().items()})
    return result


def _on_signal(signum, frame) -> None:
    try:
        found = breakdown()
    except Exception as exc:  # noqa: BLE001 - an exception here would stop the server
        found = {"error": f"{type(exc).__name__}: {exc}"}
    with open(REPORT + ".part", "w") as out:
        json.dump(found, out)
    os.replace(REPORT + ".part", REPORT)


def main() -> None:
    signal.signal(signal.SIGUSR1, _on_signal)
    from streamlit.web.cli import main as streamlit

    sys.argv = ["streamlit", *sys.argv[1:]]
    streamlit()


if __name__ == "__main__":
    main()
