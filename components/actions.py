"""What the run buttons do: gather a page's inputs, let the owner's budget refuse a run that cannot fit,
start, retry or cancel it; and hand finished results to history, on whichever page the person is."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from components import backgrounds, inputs, messages, session
from services import budget, config, engines, quota, recovery, runs, touchup, uploads



@dataclass(frozen=True)
class Spec:
    """What a run page's button starts: from the photo in use or Batch's uploads, with one prompt or
    Variants' ideas (every photo × every prompt), and what the page says when one of them is missing."""

    batch_photos: bool
    ideas: bool
    no_photo: str
    no_prompt: str


SPECS = {
    "replace": Spec(batch_photos=False, ideas=False,
                    no_photo="Add a photo first: upload one, take one, or try a sample above.",
                    no_prompt="Write a prompt first: where should the subject be? Or click one of the ideas under "
                              "the box."),
    "variants": Spec(batch_photos=False, ideas=True, no_photo="Add a photo first: upload one, take one, or try a "
                     "sample.", no_prompt="Write at least one prompt (up to four)."),
    "batch": Spec(batch_photos=True, ideas=False, no_photo="Add some photos first (or a ZIP of photos).",
                  no_prompt="Write a prompt first: where should the subjects be?"),
}
RUN_PAGES = (*SPECS, "touchup")  # a touch-up is a run of its own (components/touchup.py)


@st.cache_resource
def shared_ledger() -> budget.Ledger:
    """One ledger (and rate limiter) for every session of this process: the owner's budget is shared."""
    return budget.from_settings()


def on_owner_key(chosen: str) -> bool:
    """Whether a run on engine `chosen` would send on the app owner's key (Novita, and no key of this
    session's own): the owner's budget and pause then apply."""
    return chosen == engines.NOVITA and not session.own_key()


def owner_pause() -> quota.Suspended | None:
    """The pause on the owner's key after Novita refused it, when this session would send on that key."""
    owner = config.api_key()
    if not on_owner_key(engines.NOVITA) or not owner:
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
    return backgrounds.look(name, inputs.FORMS[name].background)


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
    try:
        shared_ledger().check(session.account(), needed, owner_key=on_owner_key(chosen))
    except budget.BudgetExceeded as exc:
        session.page(name).message = messages.describe(exc, owner_key=True)[0]
        return False
    return True


def start(name: str) -> None:
    """on_click of page `name`'s run button (and of Try again): every photo × every prompt its Spec takes,
    or a sentence saying what is missing. It runs before the page renders, so the button is already disabled
    while the run is in flight and a second press sends nothing."""
    page, spec, form = session.page(name), SPECS[name], inputs.FORMS[name]
    page.message = None
    if is_running(name):
        return
    free = _prompt_free(name)  # a background that needs no prompt: its label names the result in files
    if free:
        prompts = [free]
    elif spec.ideas:
        prompts = inputs.idea_prompts()
    else:
        prompts = [typed] if (typed := inputs.prompt(form.prompt)) else []
    page.left_out, skipped = [], []
    if spec.batch_photos:
        found, skipped = uploads.photos_from_uploads(inputs.uploaded_photos())
        photos = [(file_name, {"data": data}) for file_name, data in found]
    else:
        photo = session.photo()
        photos = [] if photo is None else [(photo.name, {"prepared": photo.prepared})]
    if not photos:
        page.message = " ".join(map(messages.refusal_sentence, skipped)) or spec.no_photo
    elif not prompts:
        page.message = spec.no_prompt
    else:
        if spec.ideas:
            page.opened = None  # the variant picked from the last grid is not in the next one
        tasks = [runs.Task(file_name, prompt, **source) for file_name, source in photos for prompt in prompts]
        if _run(name, tasks, inputs.image_type(form.format)):
            page.left_out = skipped  # said beside the run for as long as it is shown, not once


def _run(name: str, tasks: list[runs.Task], image_type: str) -> bool:
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
    history = session.history()
    run = runs.Run(tasks, image_type, chosen, owner_key=on_owner_key(chosen), owner=session.account(),
                   keep=history.writer(), lock=inputs.keeps_subject(inputs.FORMS[name].lock), recipe=wanted.recipe,
                   receipts=recovery.Receipts(lambda: (history.store, history.owner)))
    run.start(spending())
    session.page(name).run, session.page(name).watching = run, True
    return True


def retry(name: str) -> None:
    """on_click of Retry failed: run the failed tasks a retry can help again, on the key in use now."""
    run = session.page(name).run
    if run is None or not run.finished:
        return
    # a kept reply is paid for, and a task Novita accepted is collected again, not bought again
    needed = sum(task.retryable and task.reply is None and task.handle is None for task in run.tasks)
    if not _fits(name, needed, run.engine):
        return
    run.owner_key = on_owner_key(run.engine)
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
            if task.made_from is not None:  # it rests on the subject mask: it can be touched up
                session.remember_source(task.item.id, _source(page.run, task))
                task.made_from = None
            if name == "replace":  # the main page opens its new result in the slider
                page.opened = task.item.id
            elif name == "touchup":  # a touched-up result opens where the old one was, editor and all
                for shown in ("replace", "history", "touchup"):
                    session.page(shown).opened = task.item.id
        page.run.release(history.get)  # history's bound holds, and its items are held as history holds them


def _source(run: runs.Run, task: runs.Task) -> session.Source:
    made = task.made_from
    return session.Source(made.prepared, run.engine, run.image_type, _untouched(task.prompt), run.recipe, run.lock,
                          made.scene, made.scene_by, task.strokes)


def touch_up(item_id: str, strokes: list) -> None:
    """on_click of Apply in the Touch up editor: make result `item_id` again from the same photo and choices,
    with the strokes so far and these; nothing is sent and nothing is spent. The strokes are input like any
    other: bounded, and refused with a sentence when absurd."""
    page = session.page("touchup")
    page.message = None
    item = session.history().get(item_id)
    made_from = session.source_of(item_id) if item is not None else None
    if made_from is None or is_running("touchup"):
        return
    try:
        strokes = tuple(touchup.checked([*made_from.strokes, *strokes], made_from.prepared.size))
    except touchup.TouchUpError as exc:
        page.message = messages.refusal_sentence(exc)
        return
    scene = made_from.scene
    task = runs.Task(item.source_name, f"{made_from.prompt}{TOUCHED_UP}", prepared=made_from.prepared,
                     strokes=strokes, reply=scene,
                     handle=engines.Handle(made_from.scene_by, result=scene) if scene is not None else None)
    run = runs.Run([task], made_from.image_type, made_from.engine, owner=session.account(),
                   keep=session.history().writer(), lock=made_from.lock, recipe=made_from.recipe)
    run.start(runs.Spending(None, concurrency=1))  # no key and no price: a touch-up sends nothing
    page.run, page.watching = run, True


TOUCHED_UP = " (touched up)"


def _untouched(prompt: str) -> str:
    return prompt.removesuffix(TOUCHED_UP)


def _note_evicted(evicted: list) -> None:
    """Tell the person, once, that history dropped its oldest results to stay within its bounds."""
    if evicted:
        history = session.history()
        what = "the oldest result was" if len(evicted) == 1 else f"the {len(evicted)} oldest results were"
        session.say(f"History keeps the latest {history.max_items} results (up to {history.max_bytes // 2**20} "
                    f"MB), so {what} removed. Download results you want to keep.")
