"""CI cannot go green without the browser: with `CI` set, a missing Chromium or slider asset fails the
browser tests with a sentence; on a person's machine they skip. And the test script looks where they look."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

E2E_PROBE = '''
from tests.e2e.conftest import require_assets
require_assets()

def test_probe():
    pass
'''


def run_probe(tmp_path: Path, env: dict[str, str], chromium: str) -> subprocess.CompletedProcess:
    """pytest on a one-test browser module, with the Chromium path pointed at `chromium`."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(E2E_PROBE.replace("from tests.e2e.conftest import require_assets",
                                       "import tests.e2e.conftest as c\n"
                                       f"c.CHROMIUM = c.Path({chromium!r})\n"
                                       "from tests.e2e.conftest import require_assets"))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           "--rootdir", str(tmp_path), str(probe)],
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def base_env():
    import os

    return {k: v for k, v in os.environ.items() if k != "CI"}


def test_on_ci_a_missing_browser_fails_the_run_with_a_sentence(tmp_path, base_env):
    got = run_probe(tmp_path, {**base_env, "CI": "true"}, "/nonexistent/chromium")
    assert got.returncode != 0, got.stdout
    assert "chromium is not installed" in got.stdout and "CI must run the browser tests" in got.stdout
    assert "skipped" not in got.stdout.splitlines()[-1]


def test_off_ci_a_missing_browser_skips(tmp_path, base_env):
    got = run_probe(tmp_path, base_env, "/nonexistent/chromium")
    assert got.returncode in (0, 5) and "1 skipped" in got.stdout.splitlines()[-1], got.stdout  # 5: none ran


def test_the_test_script_checks_the_path_the_browser_tests_launch():
    from tests.e2e.conftest import CHROMIUM

    script = (ROOT / "scripts" / "test.sh").read_text()
    assert f"[ -x {CHROMIUM} ]" in script
    assert "command -v chromium" not in script
