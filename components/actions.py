"""What the run buttons do: gather a page's inputs, let the owner's budget refuse a run that cannot fit,
start, retry or cancel it; and hand finished results to history, on whichever page the person is."""

from __future__ import annotations

import streamlit as st

from components import backgrounds, inputs, messages, session
from services import budget, config, engines, quota, recovery, runs, uploads

RUN_PAGES = ("replace", "variants", "batch")
BACKGROUND_KEYS = {"replace": "background", "variants": "variants.background", "batch": "batch.background"}
LOCK_KEYS = {name: f"{name}.lock" for name in RUN_PAGES}


@st.cache_resource
def shared_ledger() -> budget.Ledger:
    """One ledger (and rate limiter) for every session of this process: the owner's budget is shared."""
    return budget.from_settings()


def owner_pause() -> quota.Suspended | None:
    """The pause on the owner's key after Novita refused it, when this session would send on that key."""
    owner = config.api_key()
    if session.own_key() or not owner:
        return None
    return shared_ledger().limiter.suspended(quota.bucket_for(owner))


def engine() -> str:
    """The engine the next run uses, from the sidebar's choice and whether a usable key is set: Automatic
    falls back to the offline studio while the owner's key is paused or the owner allows it no images a day."""
    owner_off = not session.own_key() and shared_ledger().daily_limit == 0
    usable = bool(session.api_key()) and not owner_off and owner_pause() is None
    return engines.choose(session.preference(), has_key=usable)


def engine_for(name: str) -> str:
    """The engine of page `name`'s next run: the transparent cut-out or the composite when its Background
    choice asks for one, made on this server whatever the sidebar shows; else `engine()`."""
    chosen = look(name)
    if chosen.choice == backgrounds.TRANSPARENT and chosen.framing == "original":
        return engines.CUTOUT
    return engines.COMPOSITE if chosen.made_here else engine()


def look(name: str) -> backgrounds.Look:
    """What page `name`'s Background choice asks for now."""
    return backgrounds.look(name, BACKGROUND_KEYS[name])


def _prompt_free(name: str) -> str | None:
    """What a result of page `name` is called in place of a prompt when its background needs none."""
    chosen = look(name)
    return None if backgrounds.needs_prompt(chosen.choice) else chosen.label


def spending() -> runs.Spending:
    """What this session's sends spend: its key, the shared ledger, its account, the price, its share."""
    return runs.Spending(session.api_key(), shared_ledger(), session.account(), config.price_per_image(),
                         config.batch_concurrency())


def is_running(name: str) -> bool:
    """True while the run of page `name` is in flight, or ended but not yet shown as ended."""
    page = session.page(name)
    return page.watching or (page.run is not None and not page.run.finished)


def _fits(name: str, needed: int, chosen: str) -> bool:
    """Whether `needed` more images fit the owner's budget; if not, the page says why and nothing is sent."""
    owner_key = chosen == engines.NOVITA and not session.own_key()
    try:
        shared_ledger().check(session.account(), needed, owner_key=owner_key)
    except budget.BudgetExceeded as exc:
        session.page(name).message = messages.describe(exc, owner_key=True)[0]
        return False
    return True


def _start(name: str, tasks: list[runs.Task], image_type: str) -> bool:
    """Start page `name`'s run unless the owner's budget refuses it (the page then says why); True if started."""
    chosen = engine_for(name)
    wanted = look(name)
    if wanted.choice == backgrounds.TRANSPARENT and image_type == "jpeg":  # JPEG has no transparency: run nothing
        session.page(name).message = inputs.NO_TRANSPARENT_JPEG
        return False
    if wanted.choice == backgrounds.OWN and wanted.backdrop is None:
        session.page(name).message = ("Add a background photo first: upload it under My own background photo, "
                                      "or choose another background.")
        return False
    if not _fits(name, len(tasks), chosen):
        return False
    owner_key = chosen == engines.NOVITA and not session.own_key()
    history = session.history()
    run = runs.Run(tasks, image_type, chosen, owner_key=owner_key, owner=session.account(),
                   keep=history.writer(), lock=inputs.keeps_subject(LOCK_KEYS[name]), recipe=wanted.recipe,
                   receipts=recovery.Receipts(lambda: (history.store, history.owner)))
    run.start(spending())
    session.page(name).run, session.page(name).watching = run, True
    return True


def start_replace() -> None:
    """on_click of Replace background and Try again: runs before the page renders, so the button is
    already disabled while the run is in flight and a second press sends nothing."""
    page = session.page("replace")
    page.message = None
    if is_running("replace"):
        return
    photo, prompt = session.photo(), _prompt_free("replace") or inputs.prompt()  # the label names it in files
    if photo is None:
        page.message = "Add a photo first: upload one, take one, or try a sample above."
    elif not prompt:
        page.message = "Write a prompt first: where should the subject be? Or click one of the ideas under the box."
    else:
        _start("replace", [runs.Task(photo.name, prompt, prepared=photo.prepared)], inputs.image_type())


def start_variants() -> None:
    """on_click of Make variants: the photo in use × each idea written."""
    page = session.page("variants")
    page.message = None
    if is_running("variants"):
        return
    free = _prompt_free("variants")
    photo, prompts = session.photo(), [free] if free else inputs.idea_prompts()  # nothing to vary: one result
    if photo is None:
        page.message = "Add a photo first: upload one, take one, or try a sample."
    elif not prompts:
        page.message = "Write at least one prompt (up to four)."
    else:
        page.opened = None
        tasks = [runs.Task(photo.name, prompt, prepared=photo.prepared) for prompt in prompts]
        _start("variants", tasks, inputs.image_type("variants.format"))


def start_batch() -> None:
    """on_click of Replace all backgrounds: every uploaded photo (ZIPs opened) × the prompt."""
    page = session.page("batch")
    page.message = None
    if is_running("batch"):
        return
    page.left_out = []
    photos, skipped = uploads.photos_from_uploads(inputs.uploaded_photos())
    prompt = _prompt_free("batch") or inputs.prompt("batch.prompt")
    if not photos:
        page.message = " ".join(skipped) or "Add some photos first (or a ZIP of photos)."
    elif not prompt:
        page.message = "Write a prompt first: where should the subjects be?"
    else:
        if _start("batch", [runs.Task(name, prompt, data=data) for name, data in photos],
                  inputs.image_type("batch.format")):
            page.left_out = skipped  # said beside the run for as long as it is shown, not once


def retry(name: str) -> None:
    """on_click of Retry failed: run the failed tasks a retry can help again, on the key in use now."""
    run = session.page(name).run
    if run is None or not run.finished:
        return
    # a kept reply is paid for, and a task Novita accepted is collected again, not bought again
    needed = sum(task.retryable and task.reply is None and task.handle is None for task in run.tasks)
    if not _fits(name, needed, run.engine):
        return
    run.owner_key = run.engine == engines.NOVITA and not session.own_key()
    run.retry_failed(spending())
    session.page(name).watching = True


def cancel(name: str) -> None:
    """on_click of Cancel: stop what is not yet sent."""
    run = session.page(name).run
    if run is not None:
        run.cancel_rest()


def collect() -> None:
    """Move every finished result of any run into history; called on every page, so nothing finished is
    lost when a person leaves a page mid-run. The main page opens its new result in the slider."""
    history = session.history()
    for name in RUN_PAGES:
        page = session.page(name)
        if page.run is None:
            continue
        for task in page.run.collect():
            _note_evicted(history.add(task.item))
            if name == "replace":
                page.opened = task.item.id
        page.run.release(lambda item_id: history.get(item_id) is not None)  # history's bound holds


def _note_evicted(evicted: list) -> None:
    """Tell the person, once, that history dropped its oldest results to stay within its bounds."""
    if evicted:
        history = session.history()
        what = "the oldest result was" if len(evicted) == 1 else f"the {len(evicted)} oldest results were"
        session.say(f"History keeps the latest {history.max_items} results (up to {history.max_bytes // 2**20} "
                    f"MB), so {what} removed. Download results you want to keep.")
