"""Every per-session key, initialised in one place, and typed accessors for them: the photo in use, the
history, the key and engine chosen, the session's spending account, and one small state object per page."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import streamlit as st

from components.messages import refusal_sentence
from services import config, engines, images, novita, samples
from services.budget import Account
from services.history import History
from services.images import PreparedImage
from services.runs import Run
from services.touchup import Stroke

PAGES = ("replace", "variants", "batch", "history", "touchup")
ENGINE_KEY = "engine_preference"  # the sidebar's radio writes it


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


@dataclass
class PageState:
    """One page's state: its run (in flight or last finished), a sentence to say once, the result open."""

    run: Run | None = None
    message: str | None = None  # what is missing, or why a run was refused; said once
    opened: str | None = None  # id of the result shown in the slider
    watching: bool = False  # the page shows the run as in flight (its button disabled) until it reruns
    left_out: list = field(default_factory=list)  # uploads.UploadRefusal: what the run left out; kept with it


def init() -> None:
    """Create the session's keys on its first run; later runs keep what is there."""
    st.session_state.setdefault("history", History())
    st.session_state.setdefault("photo", None)  # Photo | None: survives page switches, unlike the uploader
    st.session_state.setdefault("photo.seen", {})  # input key -> id of the value the photo last followed
    st.session_state.setdefault("photo_error", None)  # str | None: why the last chosen file was refused
    st.session_state.setdefault("notices", [])  # one-time information, e.g. history dropped old results
    st.session_state.setdefault("account", Account(cap=config.max_images_per_session()))
    st.session_state["account"].cap = config.max_images_per_session()  # settings are read at call time
    st.session_state.setdefault("user_api_key", "")  # a key pasted in the sidebar, this session only
    st.session_state.setdefault(ENGINE_KEY, "auto")
    st.session_state.setdefault(SOURCES_KEY, OrderedDict())  # item id -> Source, for Touch up
    for key, value in (("touchup.start", None), ("touchup.generation", 0), ("touchup.drawn", None)):
        st.session_state.setdefault(key, value)  # the Touch up canvas (components/touchup.py)
    st.session_state.setdefault("browser.token", None)  # the browser's key to its kept results (keeper.py)
    for name in PAGES:
        st.session_state.setdefault(f"{name}.page", PageState())


def page(name: str) -> PageState:
    """The state of page `name` (one of PAGES)."""
    return st.session_state[f"{name}.page"]


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


def photo_error() -> str | None:
    """Why the last chosen file was refused, if it was."""
    return st.session_state["photo_error"]


def account() -> Account:
    """This session's spending: images and dollars, and what is held or spent on the owner's key."""
    return st.session_state["account"]


def say(notice: str) -> None:
    """Keep a one-time notice for the next place that shows notices."""
    st.session_state["notices"].append(notice)


def take_notices() -> list[str]:
    """The notices not yet shown; each is returned once."""
    notices, st.session_state["notices"] = st.session_state["notices"], []
    return notices


def api_key() -> str | None:
    """The key this session uses: the one pasted in the sidebar, else the owner's; never shown."""
    return config.api_key(st.session_state.get("user_api_key"))


def own_key() -> bool:
    """True when the person pasted their own key: the owner's caps do not apply to it."""
    return bool(st.session_state["user_api_key"])


def keep_key(typed: str) -> None:
    """Use a pasted key for this session only."""
    st.session_state["user_api_key"] = typed
    st.session_state.pop("own_balance", None)


BALANCE_SECONDS = 300.0  # how long a read of the pasted key's balance is shown before it is read again


def own_balance() -> float | None:
    """The available balance of the account whose key the person pasted, in dollars, read at most every
    BALANCE_SECONDS and kept in this session only (it is that person's, never a shared cache's)."""
    key = st.session_state["user_api_key"]
    if not key:
        return None
    read = st.session_state.get("own_balance")
    if read is None or time.monotonic() - read[0] > BALANCE_SECONDS:
        read = (time.monotonic(), novita.available_balance(api_key=key))
        st.session_state["own_balance"] = read
    return read[1]


def forget_key() -> None:
    """Go back to the owner's key (or none)."""
    st.session_state["user_api_key"] = ""
    st.session_state.pop("own_balance", None)


def preference() -> str:
    """The engine the person picked in the sidebar: auto, novita or offline."""
    return st.session_state[ENGINE_KEY]


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
        st.session_state["photo_error"] = refusal_sentence(exc)  # the sentence names the file itself
        return
    st.session_state["photo_error"] = None


def clear_photo(source: str) -> None:
    """Forget the photo when the person removes it from the input it came from."""
    current = st.session_state["photo"]
    if current is not None and current.source == source:
        st.session_state["photo"] = None
    st.session_state["photo_error"] = None


# --- what this session's latest results were made from, so they can be touched up ------------------------

SOURCES = 6  # results of this session that can be touched up: each holds its photo (about 2-8 MB)
SOURCES_KEY = "touchup.sources"


@dataclass(frozen=True)
class Source:
    """What a result was made from, so it can be made again with strokes: the prepared photo, the engine and
    what it was asked (format, prompt, the background's recipe, the subject lock), Novita's own image before
    the subject was laid back (None for a result made here), and the strokes it was made with."""

    prepared: PreparedImage
    engine: str
    image_type: str
    prompt: str
    recipe: dict | None = None
    lock: bool = False
    scene: engines.ReplaceResult | None = None
    scene_by: str | None = None
    strokes: tuple[Stroke, ...] = ()


def remember_source(item_id: str, source: Source) -> None:
    """Keep what result `item_id` was made from, for this session's latest SOURCES results."""
    kept: OrderedDict[str, Source] = st.session_state[SOURCES_KEY]
    kept[item_id] = source
    kept.move_to_end(item_id)
    while len(kept) > SOURCES:
        kept.popitem(last=False)


def source_of(item_id: str) -> Source | None:
    """What result `item_id` was made from, when this session still has it and it rests on the subject mask."""
    return st.session_state[SOURCES_KEY].get(item_id)


def forget_sources() -> None:
    """Drop every photo kept for Touch up (Forget my photos)."""
    st.session_state[SOURCES_KEY].clear()
