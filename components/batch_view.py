"""Batch and Variants on the page: start a run, watch its progress, collect results, retry, ZIP."""

from __future__ import annotations

import time

import streamlit as st

from components import inputs, messages, session, tally
from components.compare import compare
from components.results import describe, download_button
from components.runner import (count_paid, engine_for, note_evicted, ordinal, owner_images_left, plural,
                               shared_limiter)
from components.text import escape_markdown
from services import batch as batches
from services import config, engines, export

STATE_ICONS = {batches.WAITING: ":material/schedule:", batches.RUNNING: ":material/progress_activity:",
               batches.DONE: ":material/check_circle:", batches.FAILED: ":material/error:"}
RUNS = ("batch.run", "variants.run")  # session keys of the two kinds of runs


def _start(run_key: str, tasks: list[batches.Task], image_type: str, chosen: str) -> None:
    """Start tasks in the background, unless the session's cap on the owner's key forbids it."""
    owner_key = not st.session_state["user_api_key"]
    left = owner_images_left(chosen)
    if left is not None and len(tasks) > left:
        cap = config.max_images_per_session()
        st.session_state[f"{run_key}.message"] = (
            f"This needs {plural(len(tasks), 'Novita image')} but this session has {left} left of its {cap}. "
            "Use fewer photos or prompts, or choose the offline studio in the sidebar.")
        return
    run = batches.Batch(tasks, image_type, chosen, concurrency=config.batch_concurrency(), owner_key=owner_key)
    run.start(api_key=session.api_key(), cost=config.price_per_image(), limiter=shared_limiter())
    st.session_state[run_key] = run


def start_batch() -> None:
    """on_click of the Batch page's button: every uploaded photo (ZIPs opened) × the prompt."""
    if is_running("batch.run"):  # a second press before the button shows disabled sends nothing
        return
    st.session_state["batch.run.message"] = None
    uploads = [(f.name, f.getvalue()) for f in st.session_state.get("batch.upload") or []]
    photos, skipped = batches.photos_from_uploads(uploads)
    prompt = (st.session_state.get("batch.prompt") or "").strip()
    chosen, image_type = engine_for("batch.background"), (st.session_state.get("batch.format") or "PNG").lower()
    if chosen == engines.CUTOUT:
        prompt = engines.CUTOUT_PROMPT
    if not photos:
        st.session_state["batch.run.message"] = " ".join(skipped) or "Add some photos first (or a ZIP of photos)."
    elif chosen == engines.CUTOUT and image_type == "jpeg":
        st.session_state["batch.run.message"] = inputs.NO_TRANSPARENT_JPEG
    elif not prompt:
        st.session_state["batch.run.message"] = "Write a prompt first: where should the subjects be?"
    else:
        if skipped:
            st.session_state["batch.run.message"] = " ".join(skipped)
        tasks = [batches.Task(name, prompt, data=data) for name, data in photos]
        _start("batch.run", tasks, image_type, chosen)


def start_variants() -> None:
    """on_click of the Variants page's button: the photo in use × each prompt given."""
    if is_running("variants.run"):
        return
    st.session_state["variants.run.message"] = None
    photo = session.photo()
    prompts = [p.strip() for p in (st.session_state.get(f"variants.prompt{i}") or "" for i in range(4))]
    prompts = [p for p in prompts if p]
    chosen, image_type = engine_for("variants.background"), (st.session_state.get("variants.format") or "PNG").lower()
    if chosen == engines.CUTOUT:
        prompts = [engines.CUTOUT_PROMPT]  # no background to vary: one cut-out
    if photo is None:
        st.session_state["variants.run.message"] = "Add a photo first: upload one, take one, or try a sample."
    elif chosen == engines.CUTOUT and image_type == "jpeg":
        st.session_state["variants.run.message"] = inputs.NO_TRANSPARENT_JPEG
    elif not prompts:
        st.session_state["variants.run.message"] = "Write at least one prompt (up to four)."
    else:
        st.session_state["variants.picked"] = None
        tasks = [batches.Task(photo.name, prompt, prepared=photo.prepared, before_preview=photo.before_preview)
                 for prompt in prompts]
        _start("variants.run", tasks, image_type, chosen)


def is_running(run_key: str) -> bool:
    """True while a run of this kind is in flight."""
    run = st.session_state.get(run_key)
    return run is not None and not run.finished


def retry(run_key: str) -> None:
    """on_click of Retry failed: run only the failed tasks again."""
    run = st.session_state.get(run_key)
    if run is None or not run.finished:
        return
    retryable = sum(task.status == batches.FAILED and task.retryable for task in run.tasks)
    left = owner_images_left(run.engine)
    if left is not None and retryable > left:
        st.session_state[f"{run_key}.message"] = (
            f"Retrying needs {plural(retryable, 'Novita image')} but this session has {left} left. "
            "Choose the offline studio in the sidebar, or paste your own Novita key there.")
        return
    run.owner_key = not st.session_state["user_api_key"]  # the key in use now is the one the retries spend
    run.retry_failed(api_key=session.api_key(), cost=config.price_per_image(), limiter=shared_limiter())


def collect() -> None:
    """Move every finished result of any run into history; called on every page, so nothing finished is
    lost when a person leaves the page mid-run."""
    for run_key in RUNS:
        run = st.session_state.get(run_key)
        if run is None:
            continue
        history = session.history()
        for task in run.collect():
            note_evicted(history.add(task.item))
            count_paid(task.item, owner_key=run.owner_key)
        run.release(lambda item_id, history=history: history.get(item_id) is not None)  # history's bound holds


def _summary(run: batches.Batch) -> tuple[float, str]:
    counts = run.counts()
    total = len(run.tasks)
    left = counts[batches.WAITING] + counts[batches.RUNNING]
    text = f"{counts[batches.DONE]} done · {counts[batches.FAILED]} failed · {left} remaining of {total}"
    return (total - left) / max(total, 1), text


def _rows(run: batches.Batch) -> None:
    for task in run.tasks:
        name = escape_markdown(task.source_name)
        if task.status == batches.DONE and task.item is not None:
            st.markdown(f"{STATE_ICONS[task.status]} **{name}** — done in {task.item.seconds:.1f} s")
        elif task.status == batches.DONE and task.released:
            st.markdown(f"{STATE_ICONS[task.status]} **{name}** — done in {task.seconds:.1f} s; no longer kept "
                        "(removed from History)")
        elif task.status == batches.FAILED:
            reason = messages.describe(task.error, owner_key=run.owner_key)[0] if task.error is not None else ""
            st.markdown(f"{STATE_ICONS[task.status]} **{name}** — failed: {escape_markdown(reason)}")
        elif task.status == batches.RUNNING and (waiting := task.waiting) is not None:  # read once: it may clear
            place, seconds = waiting
            st.markdown(f"{STATE_ICONS[batches.WAITING]} **{name}** — the shared key is busy: "
                        f"{ordinal(place)} in line, about {seconds:.0f} s")
        else:
            st.markdown(f"{STATE_ICONS[task.status]} **{name}** — {task.status}")


def watch(run_key: str, *, rows: bool = True) -> None:
    """While the run works: a progress bar and each task's state, refreshed until it ends, then rerun."""
    run = st.session_state[run_key]
    st.button("Cancel the rest", key=f"{run_key}.cancel", on_click=run.cancel.set, icon=":material/close:",
              help="Photos not yet sent are not sent; those already with Novita finish. Retry failed runs them later.")
    bar, detail = st.empty(), st.empty()
    while True:
        collect()
        tally.refresh()  # the sidebar's results and spend, as they come in
        fraction, text = _summary(run)
        bar.progress(fraction, text=text)
        if rows:
            with detail.container():
                _rows(run)
        if run.finished:
            break
        time.sleep(0.3)
    collect()
    st.rerun()


def outcome(run_key: str, *, label: str, rows: bool = True) -> None:
    """After the run: the summary, each task's state, Retry failed, and Download all (ZIP)."""
    message = st.session_state.get(f"{run_key}.message")
    st.session_state[f"{run_key}.message"] = None  # said once; gone on the next rerun
    if message:
        st.warning(escape_markdown(message), icon=":material/info:")  # may name an uploaded ZIP
    notice, st.session_state["notice"] = st.session_state["notice"], None
    if notice:
        st.info(notice, icon=":material/info:")
    run = st.session_state.get(run_key)
    if run is None:
        return
    if not run.finished:
        watch(run_key, rows=rows)
        return
    fraction, text = _summary(run)
    st.progress(fraction, text=text)
    if rows:
        _rows(run)
    failed = sum(task.status == batches.FAILED and task.retryable for task in run.tasks)
    done = [task for task in run.tasks if task.item is not None]  # released results are no longer here
    if failed:
        st.button(f"Retry failed ({failed})", key=f"{run_key}.retry", on_click=retry, args=(run_key,),
                  icon=":material/refresh:")
    if done:
        rows_ = run.rows(lambda error: messages.describe(error, owner_key=run.owner_key)[0])
        st.download_button("Download all (ZIP)", data=lambda: export.zip_results(rows_),
                           file_name=f"{label}-results.zip", mime="application/zip", on_click="ignore",
                           key=f"{run_key}.zip", icon=":material/folder_zip:", type="primary")


def variant_grid(run_key: str) -> None:
    """The variants side by side; the one picked opens in the slider above the grid."""
    run = st.session_state.get(run_key)
    if run is None or not run.finished:
        return
    done = [task.item for task in run.tasks if task.item is not None]
    if not done:
        return
    picked = next((i for i in done if i.id == st.session_state.get("variants.picked")), done[0])
    compare(picked.before_preview, picked.after_preview, key=picked.id)
    st.caption(f"“{escape_markdown(picked.prompt)}” · {describe(picked)}")
    for start_at in range(0, len(done), 2):
        for column, item in zip(st.columns(2), done[start_at:start_at + 2]):
            with column.container(border=True):
                st.image(item.after_preview, width="stretch")
                st.markdown(f"**{escape_markdown(item.prompt)}**")
                open_col, download_col = st.columns(2)
                open_col.button("Open in slider", key=f"variants.open.{item.id}", icon=":material/open_in_full:",
                                on_click=lambda item_id=item.id: st.session_state.update({"variants.picked": item_id}))
                with download_col:
                    download_button(item, key=f"variants.dl.{item.id}", label="Download")
