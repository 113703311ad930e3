"""Every per-session key, initialised in one place, and typed accessors for them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st

from services import config, images, samples
from services.history import History
from services.images import PreparedImage
from services.jobs import Job


CHIP_EDGE = 160
PHOTO_INPUTS = ("upload", "camera", "sample")  # widget keys of the places a photo can come from


@dataclass(frozen=True)
class Photo:
    """The photo a person chose, prepared once: what is sent and what the slider shows as "before"."""

    name: str
    source: str  # "upload" | "camera" | "sample"
    digest: str
    prepared: PreparedImage
    before_preview: bytes
    chip: bytes  # the small picture beside "Photo in use", made once


def init() -> None:
    """Create the session's keys on its first run; later runs keep what is there."""
    st.session_state.setdefault("history", History())
    st.session_state.setdefault("photo", None)  # Photo | None: survives page switches, unlike the uploader
    st.session_state.setdefault("photo.seen", {})  # input key -> id of the value the photo last followed
    st.session_state.setdefault("photo_error", None)  # str | None: why the last chosen file was refused
    st.session_state.setdefault("job", None)  # Job | None: the run in flight
    st.session_state.setdefault("last_error", None)  # (user message, retryable) of the last failed run
    st.session_state.setdefault("last_steps", None)  # (label, steps) of the last finished run
    st.session_state.setdefault("replace.missing", None)  # what the person must add before a run
    st.session_state.setdefault("notice", None)  # one-time information: eviction, a cancelled wait
    st.session_state.setdefault("paid_images", 0)  # Novita results on this session (the spend figures)
    st.session_state.setdefault("spend", 0.0)  # estimated dollars
    st.session_state.setdefault("owner_images", 0)  # of those, made on the owner's key: what the cap counts
    st.session_state.setdefault("replace.current", None)  # id of the result shown in the slider
    st.session_state.setdefault("history.selected", None)  # id of the result opened on the History page
    st.session_state.setdefault("user_api_key", "")  # a key pasted in the sidebar, this session only
    st.session_state.setdefault("engine_preference", "auto")


def history() -> History:
    """This session's history."""
    return st.session_state["history"]


def photo() -> Photo | None:
    """The photo currently chosen, prepared; brought in line with the inputs' current values first."""
    follow_inputs()
    return st.session_state["photo"]


def follow_inputs() -> None:
    """Make the photo in use follow what the uploader, camera and sample picker hold right now: prepare a
    value whose id is new, forget one its input no longer holds. Derived on every call rather than in an
    on_change event, so a rerun that interrupts the one carrying the change loses nothing."""
    seen: dict[str, str | None] = st.session_state.setdefault("photo.seen", {})
    for source in PHOTO_INPUTS:
        if source not in st.session_state:  # the input is not on this page: it holds nothing to follow
            seen[source] = None
            continue
        value = st.session_state[source]
        ident = None if value is None else (value if source == "sample" else value.file_id)
        if ident == seen.get(source):
            continue
        if value is None:
            clear_photo(source)
        elif source == "sample":
            set_photo(*samples.sample(value), source)
        else:
            set_photo(value.name, value.getvalue(), source)
        seen[source] = ident


def job() -> Job | None:
    """The run in flight, if any."""
    return st.session_state["job"]


def api_key() -> str | None:
    """The key this session uses: the one pasted in the sidebar, else the owner's; never shown."""
    return config.api_key(st.session_state.get("user_api_key"))


def make_photo(name: str, data: bytes, source: str, digest: str | None = None) -> Photo:
    """Prepare a photo once, with its slider preview and chip; raises ImageError for what cannot be used."""
    prepared = images.prepare(data, name)
    chip = images.preview(prepared.preview, CHIP_EDGE)
    return Photo(name, source, digest or hashlib.sha256(data).hexdigest(), prepared, prepared.preview, chip)


def set_photo(name: str, data: bytes, source: str) -> None:
    """Prepare a newly chosen photo once; on a refusal keep the message and leave the old photo alone."""
    digest = hashlib.sha256(data).hexdigest()
    current = st.session_state["photo"]
    if current is not None and current.digest == digest:
        st.session_state["photo_error"] = None
        return
    try:
        st.session_state["photo"] = make_photo(name, data, source, digest)
    except images.ImageError as exc:
        st.session_state["photo_error"] = str(exc)  # the sentence names the file itself
        return
    st.session_state["photo_error"] = None
    st.session_state["last_error"] = None


def clear_photo(source: str) -> None:
    """Forget the photo when the person removes it from the input it came from."""
    current = st.session_state["photo"]
    if current is not None and current.source == source:
        st.session_state["photo"] = None
    st.session_state["photo_error"] = None
