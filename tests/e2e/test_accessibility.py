"""Accessibility: axe-core's WCAG 2 A and AA rules on every page, in a real browser.

axe-core comes from npm (tests/e2e/node_modules/axe-core, installed by scripts/test.sh) and is injected
into the page and into every frame in it, so the result slider's iframe (streamlit-image-comparison,
rendered by juxtapose) is checked with the page: axe runs from the top document and collects each frame's
results itself. Each page must have no violation of impact "serious" or "critical".
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import (IDLE, RUN_TIMEOUT, VIEWPORT, _cannot_run, _route_context, _serve, expect,
                                jpeg, require_assets)

require_assets()

AXE_PACKAGE = Path(__file__).resolve().parent / "node_modules" / "axe-core"
AXE_SCRIPT = AXE_PACKAGE / "axe.min.js"
if not AXE_SCRIPT.exists():
    _cannot_run("tests/e2e/node_modules/axe-core is missing; run `bash scripts/test.sh` (it runs `npm install` "
                "in tests/e2e) to get the accessibility checker")

TAGS = ["wcag2a", "wcag2aa"]
BLOCKING = ("serious", "critical")
RUN_AXE = """
(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})
  .then(r => ({
    violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map(n => ({target: n.target.join(' >> '), html: n.html.slice(0, 160),
        summary: (n.failureSummary || '').slice(0, 300)}))})),
    ran: [...r.passes, ...r.violations, ...r.incomplete, ...r.inapplicable].map(x => x.id),
  }))
"""

_printed_rules: list[bool] = []


def axe_version() -> str:
    return json.loads((AXE_PACKAGE / "package.json").read_text())["version"]


def audit(page, where: str) -> dict:
    """Run axe (WCAG 2 A and AA) on the page and every frame in it. Print the rules it ran (once per
    session) and every violation with its impact and first elements; return the result."""
    script = AXE_SCRIPT.read_text()
    for frame in page.frames:  # the top document, then the slider's srcdoc iframe: axe reaches into it
        if not frame.evaluate("() => typeof window.axe !== 'undefined'"):
            frame.add_script_tag(content=script)
    result = page.evaluate(RUN_AXE, TAGS)
    if not _printed_rules:
        _printed_rules.append(True)
        rules = sorted(set(result["ran"]))
        print(f"\naxe-core {axe_version()}, tags {TAGS}: {len(rules)} rules ran: {', '.join(rules)}")
    for v in result["violations"]:
        print(f"[{where}] {v['impact']}: {v['id']} on {len(v['nodes'])} element(s): {v['help']}")
        for n in v["nodes"][:4]:
            contrast = re.search(r"contrast of [\d.]+ \(.*?\)", n["summary"])
            print(f"    {n['target'][-120:]}  {contrast.group(0) if contrast else n['html'][:120]}")
    return result


def assert_clean(page, where: str) -> None:
    """No serious or critical violation of WCAG 2 A/AA rules on the page (its slider's frame included)."""
    found = [f"{v['id']} ({v['impact']}): {n['target'][-160:]}" for v in audit(page, where)["violations"]
             if v["impact"] in BLOCKING for n in v["nodes"]]
    assert not found, f"{where}: serious/critical axe violations:\n" + "\n".join(found[:20])


def with_result(studio, app_offline):
    app = studio(app_offline)
    app.upload("mug.jpg", jpeg())
    app.replace("in a warehouse", "PNG")
    return app


def test_main_page_with_a_result(studio, app_offline):
    app = with_result(studio, app_offline)
    app.wait_for_slider()
    assert_clean(app.page, "main page with a result")


def test_main_page_with_the_touch_up_editor_open(studio, app_offline):
    app = with_result(studio, app_offline)
    app.act(app.page.get_by_role("button", name="Touch up").click)
    expect(app.page.get_by_role("button", name="Apply")).to_be_visible()
    expect(app.page.locator("canvas").last).to_be_visible()
    assert_clean(app.page, "main page, Touch up open")


def test_variants(studio, app_offline):
    app = with_result(studio, app_offline)
    app.go_to("Variants")
    app.settle()
    assert_clean(app.page, "Variants")


def test_batch_after_a_finished_run(studio, app_offline):
    app = studio(app_offline)
    app.go_to("Batch")
    page = app.page
    files = [{"name": "mug.jpg", "mimeType": "image/jpeg", "buffer": jpeg((640, 480), (200, 60, 40))},
             {"name": "vase.jpg", "mimeType": "image/jpeg", "buffer": jpeg((480, 640), (40, 120, 200))}]
    app.act(lambda: page.set_input_files('input[type="file"]', files=files))
    app.type_prompt("in a warehouse")
    page.get_by_role("button", name=re.compile("Replace all backgrounds")).click()
    expect(page.get_by_text(re.compile(r"^2 done · 0 failed · 0 remaining of 2$"))).to_be_visible(
        timeout=RUN_TIMEOUT)
    app.settle()
    assert_clean(page, "Batch, run finished")


MID_RUN = re.compile(r"^(\d) done · 0 failed · ([1-9]\d*) remaining of 8$")


def test_batch_mid_run(studio, app_offline):
    """The Batch page while its progress bar, rows and Cancel the rest are showing: eight 2 MP photos on
    the offline studio keep it running for many seconds, and the page is checked still running after."""
    app = studio(app_offline)
    app.go_to("Batch")
    page = app.page
    files = [{"name": f"photo-{n}.jpg", "mimeType": "image/jpeg",
              "buffer": jpeg((1600, 1200), (40 + 25 * n, 90, 200 - 20 * n))} for n in range(8)]
    app.act(lambda: page.set_input_files('input[type="file"]', files=files))
    app.type_prompt("in a warehouse")
    page.get_by_role("button", name=re.compile("Replace all backgrounds")).click()
    cancel = page.get_by_role("button", name="Cancel the rest")
    expect(cancel).to_be_visible(timeout=RUN_TIMEOUT)
    expect(page.get_by_text(MID_RUN)).to_be_visible()
    assert_clean(page, "Batch, mid-run")
    assert cancel.is_visible() and page.get_by_text(MID_RUN).count(), "the run ended before the check did"
    app.act(cancel.click)  # nothing else to wait for


def test_history_with_items(studio, app_offline):
    app = with_result(studio, app_offline)
    app.type_prompt("on a beach")
    app.press_replace()
    app.go_to("History")
    app.settle()
    expect(app.gallery_buttons("Open")).to_have_count(2)
    assert_clean(app.page, "History with two results")


@pytest.fixture(scope="module")
def app_gated(request, stub_server):
    return _serve(request, "a11y-gated", {"NOVITA_BASE_URL": stub_server.base_url, "APP_PASSWORD": "open sesame"})


def test_password_gate(chromium, app_gated):
    context = chromium.new_context(viewport=VIEWPORT)
    _route_context(context)
    try:
        page = context.new_page()
        page.goto(app_gated.url)
        page.get_by_label("Password", exact=True).wait_for(timeout=RUN_TIMEOUT)
        page.wait_for_function(IDLE, timeout=RUN_TIMEOUT)
        assert_clean(page, "password gate")
        # and with the message a wrong password brings
        box = page.get_by_label("Password", exact=True)
        box.fill("not it")
        box.press("Enter")
        expect(page.get_by_text("That password is not right", exact=False)).to_be_visible(timeout=RUN_TIMEOUT)
        page.wait_for_function(IDLE, timeout=RUN_TIMEOUT)
        assert_clean(page, "password gate after a wrong password")
    finally:
        context.close()


def test_the_run_button_download_and_slider_work_from_the_keyboard(studio, app_offline):
    """Juxtapose 1.1.6 puts its handle in the tab order and moves it 1 % per Left or Right arrow key (and
    Enter or Space on either image shows mostly that side); the run button and Download are real buttons."""
    app = with_result(studio, app_offline)
    for name in ("Replace background", "Download PNG"):
        button = app.page.get_by_role("button", name=name, exact=True).first
        assert button.evaluate("b => b.tagName === 'BUTTON' && b.tabIndex >= 0 && !b.disabled"), name
    frame = app.wait_for_slider()
    handle = frame.locator(".jx-controller")
    assert handle.get_attribute("tabindex") == "0"
    assert handle.get_attribute("aria-label") == "Before and after: move with the left and right arrow keys"
    assert app.handle_position() == pytest.approx(50, abs=1)
    handle.focus()
    for _ in range(5):
        handle.press("ArrowLeft")
    assert app.handle_position() == pytest.approx(45, abs=1)
    assert frame.locator(".jx-image.jx-right img").get_attribute("alt") == "Result: in a warehouse"
