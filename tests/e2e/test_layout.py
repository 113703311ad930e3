"""How the result looks on a phone-sized screen."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ARTIFACTS, jpeg, require_assets

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
