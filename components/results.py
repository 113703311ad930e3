"""A result in the slider with its download button, and the gallery of every attempt."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from components.compare import compare
from components.text import escape_markdown
from components.messages import OFFLINE_DESCRIPTION, ROUGHER_CUTOUTS, note_sentences
from services import engines, subject_model
from services.history import History
from services.items import HistoryItem

MIME = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
COLUMNS = 2


def describe(item: HistoryItem) -> str:
    """One line about how a result was made: format, engine, time, size."""
    width, height = item.size
    return (f"{item.image_type.upper()} · {engines.LABELS.get(item.engine, item.engine)} · "
            f"{item.seconds:.1f} s · {width} × {height} px")


def download_button(item: HistoryItem, *, key: str, primary: bool = False, label: str | None = None,
                    stretch: bool = False) -> None:
    """Download the full-resolution result as `<original-name>-<prompt-slug>.<ext>`; runs nothing."""
    st.download_button(
        # Deferred: the bytes are sent only when pressed, not hashed and shipped on every rerun; a result the
        # store keeps is read back from it only then.
        label or f"Download {item.image_type.upper()}", data=lambda: item.result, file_name=item.download_name,
        mime=MIME[item.image_type], key=key, on_click="ignore", type="primary" if primary else "secondary",
        icon=":material/download:", width="stretch" if stretch else "content",
    )


def result_panel(item: HistoryItem, *, key: str) -> None:
    """The before/after slider of one result, what made it, and its download button."""
    compare(item.before_preview, item.after_preview, key=item.id, alt=f"Result: {item.prompt}")
    st.caption(f"“{escape_markdown(item.prompt)}” · {describe(item)}")
    if item.engine in (engines.OFFLINE, engines.CUTOUT, engines.COMPOSITE) and subject_model.default_path() is None:
        st.caption(ROUGHER_CUTOUTS)
    if item.engine == engines.OFFLINE:
        st.caption(f"Made offline. {OFFLINE_DESCRIPTION}")
    elif item.engine == engines.CUTOUT:
        st.caption("Made on this server: the subject alone, on a transparent background.")
    elif item.engine == engines.COMPOSITE:
        st.caption(" ".join(("Made on this server from your photo: nothing sent, nothing spent.",
                             *note_sentences(item.notices))))
    elif item.notices:  # how Novita's image was fitted to the photo, and whether the subject is the photo's own
        st.caption(" ".join(note_sentences(item.notices)))
    download_button(item, key=f"{key}.download.{item.id}", primary=True)


def gallery(history: History, *, key: str, on_open: Callable[[str], None], open_label: str = "Open",
            page_size: int | None = None) -> None:
    """Every attempt, newest first: thumbnail, prompt, format, time; open, download or delete each.
    With `page_size`, a pager shows that many at a time, so a long session keeps reruns quick."""
    items = list(history)
    count = len(items)  # the pager's labels are made from this, now and when its choice comes back
    if page_size and count > page_size:
        pages = (count + page_size - 1) // page_size
        page = st.segmented_control("Page", list(range(1, pages + 1)), key=f"{key}.page", default=1,
                                    format_func=lambda n: f"{(n - 1) * page_size + 1}–{min(n * page_size, count)}")
        page = min(page or 1, pages)
        items = items[(page - 1) * page_size:page * page_size]
    for start in range(0, len(items), COLUMNS):
        for column, item in zip(st.columns(COLUMNS), items[start:start + COLUMNS]):
            with column.container(border=True):
                st.image(item.thumbnail, width="stretch", output_format="JPEG",  # known: no sniffing per rerun
                         alt=f"Result: {item.prompt}")
                st.markdown(f"**{escape_markdown(item.prompt)}**  \n:gray[{describe(item)}]")
                with st.container(horizontal=True, gap="small"):
                    st.button(open_label, key=f"{key}.open.{item.id}", on_click=on_open, args=(item.id,),
                              icon=":material/open_in_full:")
                    st.button("Delete", key=f"{key}.delete.{item.id}", on_click=history.remove,
                              args=(item.id,), icon=":material/delete:")
                    download_button(item, key=f"{key}.dl.{item.id}", label="Download")
