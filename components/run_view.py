"""Any run on the page: its progress while it works (one polling loop), then its outcome: the steps or
the sentence with Try again for a run of one, the rows with Retry failed and Download all (ZIP) for more."""

from __future__ import annotations

import time

import streamlit as st

from components import actions, inputs, messages, session, tally
from components.compare import compare
from components.results import describe, download_button
from components.text import escape_markdown
from services import config, engines, export, jobs, runs

STATE_ICONS = {runs.WAITING: ":material/schedule:", runs.RUNNING: ":material/progress_activity:",
               runs.DONE: ":material/check_circle:", runs.FAILED: ":material/error:"}
POLL = 0.25  # seconds between redraws while a run works


def engine_note(name: str) -> None:
    """Say plainly which engine page `name`'s next run uses and what it can do, and when Novita is paused for
    everyone."""
    chosen = actions.engine_for(name)
    if chosen == engines.CUTOUT:
        st.caption("Engine: transparent cut-out, made on this server: no key needed, nothing sent, nothing spent.")
        return
    if chosen == engines.COMPOSITE:
        st.caption("Engine: made on this server from your photo: no key needed, nothing sent, nothing spent.")
        return
    pause = actions.owner_pause() if session.preference() != engines.OFFLINE else None
    if pause is not None:
        st.warning(messages.paused_sentence(pause.kind, pause.seconds_left, offline_instead=chosen == engines.OFFLINE),
                   icon=":material/pause_circle:")
    if chosen == engines.NOVITA and not session.api_key():
        st.warning("Novita is selected but no API key is set. Paste your key in the sidebar, "
                   "or choose Automatic to use the offline studio.", icon=":material/key_off:")
    elif chosen == engines.NOVITA:
        if engines.redraws(engines.NOVITA):  # an editor that redraws the subject: it may be laid back
            inputs.lock_box(inputs.FORMS[name].lock)
        st.caption(f"Engine: Novita, about ${config.price_per_image():.4f} an image (an estimate: the owner sets it).")
    else:
        st.caption(f"Engine: offline studio. {messages.OFFLINE_DESCRIPTION}")


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, … 11th, 12th, 13th, … 21st."""
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def run_button(name: str, label: str, icon: str) -> None:
    """Which engine the run of page `name` will use, then its run button (disabled while it runs)."""
    engine_note(name)
    st.button(label, type="primary", key=inputs.FORMS[name].run, icon=icon, disabled=actions.is_running(name),
              on_click=actions.start, args=(name,))


SINGLE = ("replace", "touchup")  # runs of one photo: shown as one status with its steps


def outcome(name: str, *, label: str = "", rows: bool = True) -> None:
    """The page's message and notices, then its run: watched while it works, its outcome once it ended."""
    page = session.page(name)
    message, page.message = page.message, None
    if message:
        st.warning(escape_markdown(message), icon=":material/info:")  # may name an uploaded ZIP
    for notice in session.take_notices():
        st.info(notice, icon=":material/info:")
    run = page.run
    if run is None:
        return
    if page.left_out:  # what the uploads held that this run leaves out, for as long as the run is shown
        st.warning("  \n".join(escape_markdown(messages.refusal_sentence(refusal)) for refusal in page.left_out),
                   icon=":material/info:")
    if page.watching or not run.finished:
        _watch(name, run, rows=rows)  # reruns the page once the run ended, so its button is enabled again
        return
    if len(run.tasks) == 1 and name in SINGLE:
        _single_outcome(name, run)
    else:
        _many_outcome(name, run, label=label, rows=rows)


def _watch(name: str, run: runs.Run, *, rows: bool) -> None:
    """Redraw the run's progress until it ends, moving results into history as they come; then rerun."""
    single = name in SINGLE
    if not single or run.engine == engines.NOVITA:
        st.button("Cancel" if single else "Cancel the rest", key=f"{name}.cancel", on_click=actions.cancel,
                  args=(name,), icon=":material/close:",
                  help="Photos not yet sent are not sent; a photo already with Novita finishes. "
                       + ("" if single else "Retry failed runs them later."))
    label = _single_label(run.tasks[0])
    status = st.status(label, expanded=True) if single else None
    bar, detail, shown, drawn = st.empty(), st.empty(), 0, None
    while True:  # only what changed is sent: a wait of a minute is 240 polls, for every person waiting
        finished = run.finished
        actions.collect()
        tally.refresh()  # the sidebar's results and spend, as they come in
        if single:
            task = run.tasks[0]
            with status:
                for step in task.steps[shown:]:
                    st.write(f":material/check: {messages.note_sentence(step)}")
            shown = len(task.steps)
            now_label = _single_label(task)
            if now_label != label:
                label = now_label
                status.update(label=label)
        else:
            now = _summary(run), _row_lines(run) if rows else []
            if now != drawn:
                drawn = now
                bar.progress(*now[0])
                if rows:
                    with detail.container():
                        for line in now[1]:
                            st.markdown(line)
        if finished:
            break
        time.sleep(POLL)
    session.page(name).watching = False
    st.rerun()


def _single_label(task: runs.Task) -> str:
    waiting = task.waiting  # read once: the worker may clear it at any moment
    if waiting is not None:
        place, seconds = waiting
        return (f"The shared key is busy: you are {ordinal(place)} in line, about {seconds:.0f} s… "
                f"{task.elapsed:.0f} s")
    return f"{messages.note_sentence(task.stage)}… {task.elapsed:.0f} s"


def _single_outcome(name: str, run: runs.Run) -> None:
    task = run.tasks[0]
    if task.status == runs.DONE or task.released:
        with st.status(f"Done in {task.elapsed:.1f} s", state="complete", expanded=False):
            for step in task.steps:
                st.write(f":material/check: {messages.note_sentence(step)}")
        return
    message, retryable = messages.describe(task.error, owner_key=run.owner_key)
    if isinstance(task.error, jobs.Cancelled):
        st.info(message, icon=":material/info:")
        return
    st.error(escape_markdown(message), icon=":material/error:")  # may quote Novita's own words
    if retryable:  # when Novita answered and was paid, only the previews are remade from its reply
        paid = task.reply is not None or task.handle is not None  # collected again, never bought again
        again = actions.retry if paid or name != "replace" else actions.start  # a touch-up keeps its photo
        st.button("Try again", key=f"{name}.retry", icon=":material/refresh:", on_click=again, args=(name,))


def _summary(run: runs.Run) -> tuple[float, str]:
    counts = run.counts()
    total = len(run.tasks)
    left = counts[runs.WAITING] + counts[runs.RUNNING]
    text = f"{counts[runs.DONE]} done · {counts[runs.FAILED]} failed · {left} remaining of {total}"
    return (total - left) / max(total, 1), text


def _rows(run: runs.Run) -> None:
    for line in _row_lines(run):
        st.markdown(line)


def _row_lines(run: runs.Run) -> list[str]:
    """Each task's state, one Markdown line a task."""
    lines = []
    for task in run.tasks:
        name, icon, status = escape_markdown(task.source_name), STATE_ICONS[task.status], task.status
        item, waiting = task.item, task.waiting  # read once: the worker may change them
        if status == runs.DONE and item is not None:
            lines.append(f"{icon} **{name}** — done in {item.seconds:.1f} s")
        elif status == runs.DONE and task.released:
            lines.append(f"{icon} **{name}** — done in {task.seconds:.1f} s; no longer kept (removed from History)")
        elif status == runs.FAILED:
            message = messages.describe(task.error, owner_key=run.owner_key)[0]
            lines.append(f"{icon} **{name}** — failed: {escape_markdown(message)}")
        elif status == runs.RUNNING and waiting is not None:
            place, seconds = waiting
            lines.append(f"{STATE_ICONS[runs.WAITING]} **{name}** — the shared key is busy: "
                         f"{ordinal(place)} in line, about {seconds:.0f} s")
        else:
            lines.append(f"{icon} **{name}** — {status}")
    return lines


def _many_outcome(name: str, run: runs.Run, *, label: str, rows: bool) -> None:
    """After the run: the summary, each task's state, Retry failed, and Download all (ZIP)."""
    st.progress(*_summary(run))
    if rows:
        _rows(run)
    failed = sum(task.retryable for task in run.tasks)
    if failed:
        st.button(f"Retry failed ({failed})", key=f"{name}.retry", on_click=actions.retry, args=(name,),
                  icon=":material/refresh:")
    if any(task.item is not None for task in run.tasks):  # released results are no longer here
        manifest = run.rows(lambda error: messages.describe(error, owner_key=run.owner_key)[0])
        st.download_button("Download all (ZIP)", data=lambda: export.zip_results(manifest),
                           file_name=f"{label}-results.zip", mime="application/zip", on_click="ignore",
                           key=f"{name}.zip", icon=":material/folder_zip:", type="primary")


def variant_grid() -> None:
    """The variants side by side; the one opened shows in the slider above the grid."""
    page = session.page("variants")
    if page.run is None or not page.run.finished:
        return
    done = [task.item for task in page.run.tasks if task.item is not None]
    if not done:
        return
    picked = next((i for i in done if i.id == page.opened), done[0])
    compare(picked.before_preview, picked.after_preview, key=picked.id, alt=f"Result: {picked.prompt}")
    st.caption(f"“{escape_markdown(picked.prompt)}” · {describe(picked)}")
    for start_at in range(0, len(done), 2):
        for column, item in zip(st.columns(2), done[start_at:start_at + 2]):
            with column.container(border=True):
                st.image(item.after_preview, width="stretch", alt=f"Result: {item.prompt}")
                st.markdown(f"**{escape_markdown(item.prompt)}**")
                open_col, download_col = st.columns(2)
                open_col.button("Open in slider", key=f"variants.open.{item.id}", icon=":material/open_in_full:",
                                on_click=_open, args=("variants", item.id))
                with download_col:
                    download_button(item, key=f"variants.dl.{item.id}", label="Download")


def _open(name: str, item_id: str) -> None:
    session.page(name).opened = item_id


def opener(name: str):
    """An on_open for a gallery: open the result in page `name`'s slider."""
    return lambda item_id: _open(name, item_id)
