"""Hostile input against the real server: small files that cost a lot, sent the way a browser sends them,
with the server process's memory (RSS, from /proc/<pid>/status) and CPU (utime + stime, from
/proc/<pid>/stat) read while it handles them. The files are made here, in the test's temporary folder."""

from __future__ import annotations

import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path

from tests import hostile_files
from tests.e2e.conftest import expect, jpeg, require_assets

require_assets()

MB = 1024 * 1024
ZIP_BOMBS = 4
ZIP_GROWTH_LIMIT = 300 * MB  # four ZIPs of one 290 MB member each
DECODE_GROWTH_LIMIT = 400 * MB  # one small file that decodes big
PAGES_CPU_LIMIT = 1.0  # seconds of the server's CPU for a 32,000-page TIFF
OUTCOME_TIMEOUT = 180_000  # ms: a wait, not a bound; without the limits these files take minutes on a busy box


class Server:
    """What the operating system says about one server process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def _status(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def rss(self) -> int:
        return self._status("VmRSS")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    @contextmanager
    def peak_rss(self):
        """Yield a dict whose "peak" is, after the block, the highest RSS the process reached during it: the
        kernel's high-water mark, reset at the start (clear_refs 5), or samples every 10 ms where that
        reset is not allowed."""
        seen = {"peak": self.rss()}
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            stop = threading.Event()

            def sample():
                while not stop.wait(0.01):
                    seen["peak"] = max(seen["peak"], self.rss())

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                yield seen
            finally:
                stop.set()
                sampler.join()
            return
        yield seen
        seen["peak"] = max(seen["peak"], self._status("VmHWM"))


def written(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def test_four_zip_bombs_on_batch_keep_the_server_memory_bounded(studio, app_alone, stub, tmp_path):
    """Four ZIPs of ~289 KB, each one 290 MB member, with a good photo: the members are refused from their
    headers with a sentence each, the good photo is done, and the server's RSS grows by less than 300 MB
    during the batch and after it."""
    bomb = hostile_files.zip_bomb(290)
    assert len(bomb) < 300_000
    files = [written(tmp_path, f"shoot{n}.zip", bomb) for n in range(1, ZIP_BOMBS + 1)]
    files.append(written(tmp_path, "good.jpg", jpeg((400, 300))))
    stub.latency = 1.5  # the refusals are said while the batch runs: time to read them (the read timeout is 3 s)
    server = Server(app_alone.proc.pid)
    app = studio(app_alone)
    app.go_to("Batch")
    page = app.page
    app.type_prompt("on a marble counter")
    before = server.rss()

    with server.peak_rss() as during:
        app.act(lambda: page.set_input_files('input[type="file"]', files=[str(f) for f in files]))
        page.get_by_role("button", name=re.compile("Replace all backgrounds")).click()
        said = page.locator('[data-testid="stAlertContentWarning"]')
        expect(said.or_(page.get_by_text(re.compile(r" remaining of \d+$"))).first).to_be_visible(
            timeout=OUTCOME_TIMEOUT)
        said = said.all_inner_texts()
        finished = page.get_by_text(re.compile(r" · 0 remaining of \d+$"))
        expect(finished).to_be_visible(timeout=OUTCOME_TIMEOUT)
        app.settle(OUTCOME_TIMEOUT)
    after = server.rss()

    growth, kept = during["peak"] - before, after - before
    print(f"\nzip bombs: RSS {before / MB:.0f} MB before, peak +{growth / MB:.0f} MB, after +{kept / MB:.0f} MB")
    assert growth < ZIP_GROWTH_LIMIT, f"the server grew by {growth / MB:.0f} MB during the batch"
    assert kept < ZIP_GROWTH_LIMIT, f"the server kept {kept / MB:.0f} MB after the batch"
    expect(finished).to_have_text("1 done · 0 failed · 0 remaining of 1")  # the good photo carried on
    for n in range(1, ZIP_BOMBS + 1):
        assert f"“photo.png” in “shoot{n}.zip” is 290 MB; the limit is 30 MB a photo." in " ".join(said), said


DECODE_CASES = {
    # name: (make, MIME type, what the page shows)
    "grey16.png": (lambda: hostile_files.big_png("I;16"), "image/png", "Photo in use: grey16.png"),
    "rgba.png": (lambda: hostile_files.big_png("RGBA", fill=(9, 9, 9, 255)), "image/png",
                 "“rgba.png” is 7999 × 7999 pixels: opening it would take 489 MB of memory, more than the 192 MB"),
    "floats.tif": (hostile_files.float_tiff, "image/tiff",
                   "“floats.tif” is 8000 × 8000 pixels: opening it would take 245 MB of memory, more than the "
                   "192 MB"),
}


def test_small_files_that_decode_big_are_refused_or_prepared_within_400_mb(studio, app_alone):
    """A 16-bit 7999 × 7999 grey PNG (~140 KB), an RGBA one (~270 KB) and an 8000 × 8000 float TIFF
    (~380 KB), each chosen as the photo: prepared or refused with a sentence, and the server's RSS grows by
    less than 400 MB for each."""
    server = Server(app_alone.proc.pid)
    app = studio(app_alone)
    growths, outcomes = {}, {}
    for name, (make, mime, _) in DECODE_CASES.items():
        data = make()
        assert len(data) < 400_000
        before = server.rss()
        with server.peak_rss() as during:
            app.page.set_input_files('input[type="file"]', files=[{"name": name, "mimeType": mime, "buffer": data}])
            outcome = app.page.get_by_text(f"Photo in use: {name}").or_(app.error_box().filter(has_text=name))
            expect(outcome.first).to_be_visible(timeout=OUTCOME_TIMEOUT)
            app.settle(OUTCOME_TIMEOUT)
        growths[name], outcomes[name] = during["peak"] - before, app.body_text()
    print("\ndecode peaks: " + ", ".join(f"{name} +{growth / MB:.0f} MB" for name, growth in growths.items()))
    assert all(growth < DECODE_GROWTH_LIMIT for growth in growths.values())
    for name, (_, _, shown) in DECODE_CASES.items():
        assert shown in outcomes[name], outcomes[name]
    assert "Your photo's high bit depth was reduced to the standard 8 bits per channel." in outcomes["grey16.png"]


def test_a_tiff_of_32000_pages_is_refused_within_a_second_of_server_cpu(studio, app_alone):
    """A 3.5 MB TIFF of 32,000 pages: refused with a sentence, for less than a second of the server's CPU
    (upload, rerun and all)."""
    data = hostile_files.many_pages_tiff(32_000)
    assert 3_000_000 < len(data) < 4_000_000
    server = Server(app_alone.proc.pid)
    app = studio(app_alone)
    before = server.cpu_seconds()
    app.page.set_input_files('input[type="file"]', files=[{"name": "scan.tif", "mimeType": "image/tiff",
                                                           "buffer": data}])
    refusal = app.error_box().filter(has_text="scan.tif")
    expect(refusal.or_(app.page.get_by_text("Photo in use: scan.tif")).first).to_be_visible(
        timeout=OUTCOME_TIMEOUT)
    app.settle(OUTCOME_TIMEOUT)
    spent = server.cpu_seconds() - before
    print(f"\n32,000 pages: {spent:.2f} s of server CPU")
    assert spent < PAGES_CPU_LIMIT, f"the server spent {spent:.1f} s of CPU on a 32,000-page TIFF"
    expect(refusal).to_contain_text("“scan.tif” has more than 100 pages; this app reads TIFFs of up to 100. "
                                 "Save the page you want as its own file, then retry.")
