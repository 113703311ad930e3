"""Results as one ZIP: each image under its download name, plus a manifest.csv describing every row."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from services.items import HistoryItem, ResultGone

MANIFEST_FIELDS = ["file", "prompt", "format", "engine", "seconds", "status", "error"]
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """The cell as text a spreadsheet shows and never runs: a leading formula character gets a `'` before it
    (OWASP's advice for CSV injection)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


@dataclass(frozen=True)
class Row:
    """One line of the manifest: a result (item set), a failure (error set), or a result made but no longer
    kept (seconds set, no item)."""

    source_name: str
    prompt: str
    image_type: str
    engine: str
    item: HistoryItem | None = None
    error: str | None = None
    seconds: float | None = None  # for a result no longer kept

    @property
    def status(self) -> str:
        if self.item is not None:
            return "done"
        return "done, no longer kept" if self.seconds is not None else "failed"


def rows_for(items: Iterable[HistoryItem]) -> list[Row]:
    """Manifest rows for finished results, e.g. the whole history."""
    return [Row(i.source_name, i.prompt, i.image_type, i.engine, item=i) for i in items]


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or `name-2`, `name-3`… so two results never overwrite each other in the ZIP."""
    stem, _, ext = name.rpartition(".")
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}.{ext}"
    taken.add(candidate)
    return candidate


def zip_results(rows: Iterable[Row]) -> bytes:
    """A ZIP of every result under `<original-name>-<prompt-slug>.<ext>` and a manifest.csv of all rows."""
    buf = io.BytesIO()
    manifest = io.StringIO()
    # RFC 4180 line ends: with them the writer also quotes a CR inside a cell, which a bare LF would not.
    writer = csv.DictWriter(manifest, fieldnames=MANIFEST_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    taken: set[str] = {"manifest.csv"}
    # Images are already compressed: storing them is as small and much faster than deflating again.
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as archive:
        for row in rows:
            file = ""
            if row.item is not None:
                try:
                    data = row.item.result  # read back from the store for a result kept there
                except ResultGone:  # deleted or expired since the row was made
                    row = Row(row.source_name, row.prompt, row.image_type, row.engine, seconds=row.item.seconds)
                else:
                    file = _unique(row.item.download_name, taken)
                    archive.writestr(file, data)
                    del data
            writer.writerow({name: csv_cell(value) for name, value in {
                "file": file, "prompt": row.prompt, "format": row.image_type, "engine": row.engine,
                "seconds": f"{row.item.seconds if row.item else row.seconds:.2f}" if row.status != "failed" else "",
                "status": row.status, "error": row.error or "",
            }.items()})
        archive.writestr("manifest.csv", manifest.getvalue().encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()

