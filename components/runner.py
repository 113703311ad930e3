"""Starting a run, showing it while it works, and turning its outcome into history or a sentence."""

from __future__ import annotations

import streamlit as st

from components import inputs, messages, session
from components.text import escape_markdown
from services import config, engines, jobs, offline, quota


@st.cache_resource
def shared_limiter() -> quota.Limiter:
    """One limiter for every session of this process: the key's budget is shared by all of them."""
    return quota.from_settings()


def owner_pause() -> quota.Suspended | None:
    """The pause on the owner's key after Novita refused it, when this session would send on that key."""
    owner = config.api_key()
    if st.session_state["user_api_key"] or not owner:
        return None
    try:
        return shared_limiter().suspended(quota.bucket_for(owner))
    except Exception:  # a limiter store that cannot answer must not take the page down
        return None


def engine() -> str:
    """The engine the next run uses, from the sidebar's choice and whether a usable key is set: Automatic
    falls back to the offline studio while the owner's key is paused."""
    usable = bool(session.api_key()) and owner_pause() is None
    return engines.choose(st.session_state["engine_preference"], has_key=usable)


def engine_for(background_key: str) -> str:
    """The engine of a page's next run: the transparent cut-out when its Background choice asks for it."""
    return engines.CUTOUT if inputs.wants_cutout(background_key) else engine()


def engine_note(chosen: str) -> None:
    """Say plainly which engine will run and what it can do, and when Novita is paused for everyone."""
    if chosen == engines.CUTOUT:
        st.caption("Engine: transparent cut-out, made on this server — no key needed, nothing sent, nothing spent.")
        return
    pause = owner_pause() if st.session_state["engine_preference"] != engines.OFFLINE else None
    if pause is not None:
        st.warning(messages.paused_sentence(pause.kind, pause.seconds_left, offline_instead=chosen == engines.OFFLINE),
                   icon=":material/pause_circle:")
    if chosen == engines.NOVITA and not session.api_key():
        st.warning("Novita is selected but no API key is set. Paste your key in the sidebar, "
                   "or choose Automatic to use the offline studio.", icon=":material/key_off:")
    elif chosen == engines.NOVITA:
        st.caption(f"Engine: Novita, about ${config.price_per_image():.4f} an image.")
    else:
        st.caption(f"Engine: offline studio. {offline.DESCRIPTION}")


def request() -> None:
    """on_click of Replace background: start a run, or say what is missing. Runs before the page renders,
    so the button is already disabled while the run is in flight and a second press sends nothing."""
    st.session_state["replace.missing"] = None
    if session.job() is not None:
        return
    photo = session.photo()
    prompt = (st.session_state.get("prompt") or "").strip()
    chosen = engine_for("background")
    image_type = (st.session_state.get("format") or "PNG").lower()
    if photo is None:
        st.session_state["replace.missing"] = "Add a photo first: upload one, take one, or try a sample above."
        return
    if chosen == engines.CUTOUT:
        if image_type == "jpeg":
            st.session_state["replace.missing"] = inputs.NO_TRANSPARENT_JPEG
            return
        prompt = engines.CUTOUT_PROMPT
    elif not prompt:
        st.session_state["replace.missing"] = ("Write a prompt first: where should the subject be? "
                                               "Or click one of the ideas under the box.")
        return
    owner_key = not st.session_state["user_api_key"]
    if owner_images_left(chosen) == 0:
        cap = config.max_images_per_session()
        st.session_state["replace.missing"] = (
            f"This demo allows {plural(cap, 'Novita image')} per session, and this session has used them. "
            "The offline studio still works: choose it in the sidebar, or paste your own Novita key there.")
        return
    st.session_state["last_error"] = None
    job = jobs.start(photo.prepared, photo.before_preview, prompt, image_type, engine=chosen,
                     source_name=photo.name, api_key=session.api_key(), cost=config.price_per_image(),
                     limiter=shared_limiter(), owner_key=owner_key)
    st.session_state["job"] = job


def owner_images_left(chosen: str) -> int | None:
    """Novita images this session may still make on the owner's key; None when the cap does not apply
    (another engine, or the person's own key)."""
    if chosen != engines.NOVITA or st.session_state["user_api_key"]:
        return None
    return max(0, config.max_images_per_session() - st.session_state["owner_images"])


def plural(n: int, noun: str) -> str:
    """"1 Novita image", "2 Novita images"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def count_paid(item, *, owner_key: bool) -> None:
    """Add a finished result to the session's spend; the per-session cap counts only the owner's key."""
    if item.engine == engines.NOVITA:
        st.session_state["paid_images"] += 1
        st.session_state["spend"] += item.cost
        if owner_key:
            st.session_state["owner_images"] += 1


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, … 11th, 12th, 13th, … 21st."""
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _label(job: jobs.Job) -> str:
    waiting = job.waiting  # read once: the worker may clear it at any moment
    if waiting is not None:
        place, seconds = waiting
        return (f"The shared key is busy: you are {ordinal(place)} in line, about {seconds:.0f} s… "
                f"{job.elapsed:.0f} s")
    return f"{job.stage}… {job.elapsed:.0f} s"


def wait(job: jobs.Job) -> None:
    """Show the steps with elapsed time until the run ends, then store its outcome and rerun."""
    if job.engine == engines.NOVITA:
        st.button("Cancel", key="replace.cancel", on_click=job.cancel.set, icon=":material/close:",
                  help="Stop waiting for a free slot. A photo already sent cannot be called back.")
    with st.status(_label(job), expanded=True) as status:
        shown = 0
        while True:
            finished = job.done.wait(0.25)
            for step in job.steps[shown:]:
                st.write(f":material/check: {step}")
            shown = len(job.steps)
            if finished:
                break
            status.update(label=_label(job))
    finish(job)
    st.rerun()


def finish_if_done() -> None:
    """Hand a run that ended while the person was on another page to history (or to the error line)."""
    job = session.job()
    if job is not None and job.done.is_set():
        finish(job)


def finish(job: jobs.Job) -> None:
    """Store an ended run's outcome: its result in history, or the sentence that says why not."""
    st.session_state["job"] = None
    if job.item is not None:
        evicted = session.history().add(job.item)
        st.session_state["replace.current"] = job.item.id
        st.session_state["last_steps"] = (f"Done in {job.elapsed:.1f} s", list(job.steps))
        count_paid(job.item, owner_key=job.owner_key)
        note_evicted(evicted)
        return
    st.session_state["last_steps"] = None
    if isinstance(job.error, jobs.Cancelled):
        st.session_state["notice"] = str(job.error)
    else:
        st.session_state["last_error"] = messages.describe(job.error, owner_key=job.owner_key)


def note_evicted(evicted: list) -> None:
    """Tell the person, once, that history dropped its oldest results to stay within its bounds."""
    if evicted:
        history = session.history()
        what = "the oldest result was" if len(evicted) == 1 else f"the {len(evicted)} oldest results were"
        st.session_state["notice"] = (
            f"History keeps the latest {history.max_items} results (up to {history.max_bytes // 2**20} MB), "
            f"so {what} removed. Download results you want to keep.")


def outcome() -> None:
    """Show how the last run ended: what is missing, done with its steps, or why not with a Try again."""
    missing, st.session_state["replace.missing"] = st.session_state["replace.missing"], None
    if missing:
        st.warning(missing, icon=":material/info:")
    notice, st.session_state["notice"] = st.session_state["notice"], None
    if notice:
        st.info(notice, icon=":material/info:")
    if st.session_state["last_error"]:
        message, retryable = st.session_state["last_error"]
        st.error(escape_markdown(message), icon=":material/error:")  # may quote Novita's own words
        if retryable:
            st.button("Try again", key="replace.retry", icon=":material/refresh:", on_click=request)
    elif st.session_state["last_steps"]:
        label, steps = st.session_state["last_steps"]
        with st.status(label, state="complete", expanded=False):
            for step in steps:
                st.write(f":material/check: {step}")
