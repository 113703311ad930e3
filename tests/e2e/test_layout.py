"""How the result looks on a phone-sized screen."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ARTIFACTS, IDLE, VIEWPORT, _serve, jpeg, require_assets

require_assets()

PHONE = {"width": 390, "height": 844}


def test_slider_fits_a_phone_screen(studio, app_novita, stub):
    app = studio(app_novita, viewport=PHONE)
    app.upload("mug.jpg", jpeg())
    app.replace("in a warehouse", "PNG")
    frame = app.wait_for_slider()
    iframe = app.page.locator('iframe[data-testid="stIFrame"]').bounding_box()
    slider = frame.locator(".jx-slider").bounding_box()
    assert iframe["width"] <= PHONE["width"]  # no sideways scrolling
    assert slider["width"] == pytest.approx(iframe["width"], abs=40)
    app.page.locator('iframe[data-testid="stIFrame"]').scroll_into_view_if_needed()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    app.page.screenshot(path=ARTIFACTS / "phone-slider.png")
    gap = iframe["height"] - slider["height"]
    assert gap < 40, f"{gap:.0f} px of blank space under the slider on a {PHONE['width']} px wide screen"


@pytest.mark.parametrize("path", ["batch", "history"])
def test_a_first_visit_straight_to_a_page_gets_the_studio_navigation(chromium, request, stub_server, path):
    """A fresh server (Community Cloud wakes one for its first visitor) opened at a page's own address:
    the navigation is the studio's, not a list of the files in views/, for that visitor and the next."""
    server = _serve(request, f"fresh-{path}", {"NOVITA_BASE_URL": stub_server.base_url})
    context = chromium.new_context(viewport=VIEWPORT)
    try:
        for visit in range(2):
            page = context.new_page()
            page.goto(server.url + path)
            nav = page.get_by_test_id("stSidebarNav")
            nav.get_by_text("Replace background").wait_for(timeout=20_000)
            links = [name.split("\n")[-1].strip() for name in nav.get_by_role("link").all_inner_texts()]  # after the icon
            assert links == ["Replace background", "Variants", "Batch", "History"], f"visit {visit + 1}: {links}"
            heading = page.get_by_role("heading", level=1).first.inner_text()
            assert heading == {"batch": "Batch", "history": "History"}[path]
            assert "Traceback" not in page.content()
            page.close()
    finally:
        context.close()


def test_a_first_visit_straight_to_a_page_still_meets_the_password(chromium, request, stub_server):
    server = _serve(request, "fresh-gated", {"NOVITA_BASE_URL": stub_server.base_url, "APP_PASSWORD": "open sesame"})
    context = chromium.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(server.url + "batch")
        page.get_by_label("Password", exact=True).wait_for(timeout=20_000)
        page.wait_for_function(IDLE, timeout=20_000)  # the run that drew the gate is over: nothing else comes
        assert page.get_by_role("button", name="Replace all backgrounds").count() == 0
        assert page.get_by_test_id("stSidebarNav").count() == 0
    finally:
        context.close()
