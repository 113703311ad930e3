"""Nothing paid for is lost: a real server process killed while Novita works on a task collects that task on
its next start, into the same browser's history, without submitting it again."""

from __future__ import annotations

import time

from services.store import owner_of
from tests.e2e.conftest import E2E_KEY, AppServer, jpeg, require_assets

require_assets()

COOKIE = "rbs_browser"


def _until(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"not within {seconds:g} s: {what}")


def test_a_server_killed_mid_task_collects_it_after_a_restart_without_paying_twice(studio, edit_server, tmp_path,
                                                                                   request):
    edit_server.reset()
    edit_server.latency = 8.0  # long enough to kill the server while Novita still works
    # a short NOVITA_TIMEOUT: another process's receipt is collected only once its own wait would have ended
    env = {"NOVITA_API_KEY": E2E_KEY, "NOVITA_BASE_URL": edit_server.base_url, "NOVITA_TIMEOUT": "10",
           "HISTORY_STORE_DIR": str(tmp_path / "history")}
    first = AppServer("restart-before", env, tmp_path).start()
    request.addfinalizer(first.stop)
    person = studio(first)
    person.upload("kettle.jpg", jpeg((640, 480))).type_prompt("in a warehouse").press_replace(wait=False)

    receipts = tmp_path / "history" / "receipts"
    _until(lambda: edit_server.tasks_submitted() == 1 and list(receipts.glob("*.zip")), 20,
           "Novita accepted the task and its receipt was written")
    first.proc.kill()  # no shutdown of any kind: as a crash or a redeploy would
    first.proc.wait(timeout=10)

    second = AppServer("restart-after", env, tmp_path).start()
    request.addfinalizer(second.stop)
    token = next(c["value"] for c in person.page.context.cookies() if c["name"] == COOKIE)
    kept = tmp_path / "history" / owner_of(token)
    person.page.goto(second.url)  # the next visit starts the new process's collection
    _until(lambda: list(kept.glob("*.zip")), 60, "the collected result is kept for this browser")
    _until(lambda: not list(receipts.glob("*.zip")), 10, "the receipt is removed once the result is kept")

    person.page.goto(second.url + "history")
    _until(lambda: "in a warehouse" in person.body_text(), 20, "the result shows in the browser's history")
    posts = [r for r in edit_server.requests if r.method == "POST"]
    assert len(posts) == 1 and edit_server.tasks_submitted() == 1  # collected, never submitted again
    assert "Traceback" not in second.log()
