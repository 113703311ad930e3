"""glibc's allocator told to keep less: once per process, and nothing at all off glibc."""

import platform

import pytest

from services import malloc


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, option, value):
        self.calls.append(("mallopt", option, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


def test_glibc_is_tuned_once_per_process(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(malloc, "_LIBC", libc)
    monkeypatch.setattr(malloc, "_tuned", False)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert malloc.tune() is True
    assert malloc.tune() is False  # every rerun of the script asks again: only the first does it
    assert libc.calls == [("mallopt", malloc.M_ARENA_MAX, malloc.ARENAS),
                          ("mallopt", malloc.M_MMAP_THRESHOLD, malloc.MMAP_THRESHOLD)]
    malloc.trim()
    assert libc.calls[-1] == ("malloc_trim", 0)


def test_a_setting_in_the_environment_is_left_as_set(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(malloc, "_LIBC", libc)
    monkeypatch.setattr(malloc, "_tuned", False)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert malloc.tune() is True
    assert libc.calls == [("mallopt", malloc.M_MMAP_THRESHOLD, malloc.MMAP_THRESHOLD)]  # the arenas as set


def test_nothing_happens_off_glibc(monkeypatch):
    monkeypatch.setattr(malloc, "_LIBC", None)
    monkeypatch.setattr(malloc, "_tuned", False)
    assert malloc.tune() is False
    malloc.trim()  # no error


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_is_found_where_the_process_runs_on_it():
    assert malloc._glibc() is not None  # noqa: SLF001
    malloc.trim()
