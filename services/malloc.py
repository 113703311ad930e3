"""glibc's allocator, told to keep less of the memory it has freed.

By default glibc gives each thread that meets contention an arena of its own, up to eight per CPU, and keeps
what is freed in each for reuse instead of giving it back. This server's threads (Streamlit's, the worker
pools', onnxruntime's) pass large photos and results between them, so the freed memory spread over many
arenas grows to hundreds of MB that no one uses. Two arenas hold it to about half. Blocks of a megabyte or
more (photos, results, image arrays) get pages of their own, given back to the system the moment they are
freed: glibc would otherwise raise that line as it goes, up to 32 MB, and keep them in the heap between
smaller blocks that pin it. `trim` gives back what is free once a run has ended.

All are no-ops where the C library is not glibc (macOS, musl), and `tune` leaves alone what the environment
already set (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`: glibc read them at start).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading

log = logging.getLogger(__name__)
ARENAS = 2
MMAP_THRESHOLD = 1024 * 1024
M_MMAP_THRESHOLD = -3  # glibc's malloc.h
M_ARENA_MAX = -8

_lock = threading.Lock()
_tuned = False


def _glibc() -> ctypes.CDLL | None:
    """The process's own C library when it is glibc, else None."""
    try:
        libc = ctypes.CDLL(None)
        _ = libc.gnu_get_libc_version, libc.mallopt, libc.malloc_trim  # only glibc has the first
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def tune(arenas: int = ARENAS, mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """Hold glibc to `arenas` arenas and give blocks of `mmap_threshold` bytes or more pages of their own,
    once per process; True when it was done now. The arenas bind threads that have not yet taken one of their
    own, so call it before work starts on other threads."""
    global _tuned
    with _lock:
        if _tuned or _LIBC is None:
            return False
        _tuned = True
        done = True
        for name, option, value in (("MALLOC_ARENA_MAX", M_ARENA_MAX, arenas),
                                    ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, mmap_threshold)):
            if not os.environ.get(name):
                done = bool(_LIBC.mallopt(option, value)) and done
    if not done:
        log.warning("malloc: glibc refused a setting")
    return done


def trim() -> None:
    """Give back to the system what the heap holds free (glibc's malloc_trim(0)); nothing elsewhere."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
