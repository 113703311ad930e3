"""The one place where a failure, a notice or a run's step becomes the sentence a person reads: services
raise errors and keep notes that carry facts (kind, sizes, limits, names, who must act, Novita's reason and
message); every page shows failures through `describe`, notes through `note_sentence`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from services import budget, engines, jobs, novita, quota
from services.errors import Note, Refusal

MB = 1024 * 1024

UNEXPECTED = ("Something went wrong on our side while making this image. Press Try again; if it keeps "
              "happening, try another photo.")
ROUGHER_CUTOUTS = ("Cut-outs made on this server are rougher here: the subject model installs only on Python 3.12 "
                   "and older. For better ones, deploy the app on Python 3.12.")
OFFLINE_STILL_WORKS = ("The offline studio still works: choose it in the sidebar, or paste your own Novita key "
                       "there.")
OFFLINE_DESCRIPTION = ("Your subject, cut out on this server, on a studio backdrop painted from the colours and mood "
                       "of your prompt; for photographic scenes add a Novita key.")
NO_TRANSPARENT_JPEG = "JPEG has no transparency: choose PNG or WEBP for a transparent cut-out."

# Faults the app owner must fix, said two ways: on the owner's key (the person can do nothing about it and
# is told the owner knows), and on a key the person pasted (their own account needs the fix).
OWNER_FAULTS = {
    "balance": ("This app's Novita account is out of credit, so it cannot make new backgrounds right now. "
                "The owner has been told; nothing you change here will help.",
                "Your Novita account has no credit left. Top it up at novita.ai, or remove your key in the "
                "sidebar to use the app's."),
    "key": ("This app's Novita key was refused (it is wrong or was revoked). The owner has been told and must "
            "replace it; your photo and prompt are fine.",
            "Novita did not accept your API key. Copy it again from your Novita dashboard and paste it in the "
            "sidebar."),
    "access": ("This app's Novita account is not allowed to use background replacement. The owner has been "
               "told and must enable it; your photo and prompt are fine.",
               "Your Novita key works but is not allowed to use background replacement. Enable it for your "
               "account at novita.ai, or remove your key in the sidebar to use the app's."),
    "verification": ("This app's Novita account must finish its verification before it can make images. The "
                     "owner has been told; your photo and prompt are fine.",
                     "Your Novita account must finish its verification before it can make images. Finish it "
                     "at novita.ai, or remove your key in the sidebar to use the app's."),
    "retired": ("Novita's photographic engine is not available right now, so this app cannot make photographic "
                "scenes at the moment. The owner has been told; your photo and prompt are fine.",
                "Novita's photographic engine is not available right now; your photo and prompt are fine. Try "
                "again later."),
    "billing": ("Novita's billing could not authorise this app's account. The owner has been told and must fix "
                "its billing; your photo and prompt are fine.",
                "Novita's billing could not authorise your account. Check its billing at novita.ai, or remove "
                "your key in the sidebar to use the app's."),
}
# Faults of the app's own set-up: never the person's photo or prompt.
SETUP_FAULTS = {
    "request": "Something in this app's request to Novita is wrong, not your photo or prompt.",
    "setup": "This app is pointed at the wrong Novita address, not a problem with your photo or prompt.",
}
PERSON_FAULTS = {
    "photo_limits": "Novita found this photo too large even after the app shrank it. Try a smaller photo.",
    "photo_format": ("Novita could not read this photo after the app converted it. Save it as JPEG or PNG and "
                     "try again."),
    "prompt_refused": ("Novita's content check refused the prompt; the photo is fine. Rephrase the prompt and "
                       "press Replace background again."),
    "photo_refused": "Novita's content check refused this photo; the prompt is fine. Try another photo.",
    "gateway": "Novita's gateway failed or did not answer in time. Press Try again in a moment.",
    "unavailable": "Novita is overloaded or down for the moment. Try again in a minute.",
    "unreachable": ("Could not reach Novita from this app's server, or the connection broke. Press Try again in a "
                    "moment."),
    "unreadable": "Novita's reply could not be read as an image. Press Try again.",
    "untrusted_link": ("Novita's reply pointed to an image somewhere this app does not fetch from, so it was not "
                       "fetched. Press Try again; if it keeps happening, tell the app's owner."),
    "link_expired": ("Novita made the image, but its download link expired before the app could fetch it. Press "
                     "Try again to make a new one."),
    "key_chars": ("That API key has characters a Novita key never has (spaces, quotes or symbols from copying). "
                  "Paste the key again exactly as Novita shows it."),
    "no_key": ("No Novita API key is set. Paste your own key in the sidebar, or ask the app's owner to add "
               "NOVITA_API_KEY to the app's secrets."),
}
PAUSED = {
    "retired": "Novita's photographic engine is not available right now",
    "balance": "this app's Novita account is out of credit",
    "key": "this app's Novita key was refused",
    "access": "this app's Novita account may not use background replacement",
    "verification": "this app's Novita account must finish its verification",
    "billing": "Novita's billing could not authorise this app's account",
}


def describe(error: BaseException, *, owner_key: bool) -> tuple[str, bool]:
    """(the sentence a person reads, whether a one-click Try again makes sense) for any failure of a run.
    `owner_key` says the run spent the app owner's key rather than one the person pasted."""
    if isinstance(error, quota.Suspended):
        sentence = paused_sentence(error.kind, error.seconds_left)
    elif isinstance(error, budget.BudgetExceeded):
        sentence = budget_sentence(error)
    elif isinstance(error, Refusal):
        sentence = refusal_sentence(error)
    elif isinstance(error, novita.NovitaError):
        sentence = _novita_sentence(error, owner_key=owner_key)
    else:
        sentence = UNEXPECTED
    return sentence, jobs.retryable(error)


def budget_sentence(error: budget.BudgetExceeded) -> str:
    """What a person is told when the owner's budget refused a run: which limit, whose, and what still works."""
    images_ = f"{error.limit} Novita image{'' if error.limit == 1 else 's'}"
    if error.kind == budget.DAY and error.limit == 0:
        return f"The app's owner has turned Novita off on the shared key. {OFFLINE_STILL_WORKS}"
    if error.kind == budget.DAY:
        when = error.resets_at.strftime("%H:%M UTC") if error.resets_at else "midnight UTC"
        but = f" but for {error.left}" if error.left else ""
        return (f"The app's owner allows {images_} a day on the shared key, for everyone together, and today's "
                f"are used up{but}. The count starts again at {when}. {OFFLINE_STILL_WORKS}")
    if error.left and error.needed > error.left:
        return (f"This needs {error.needed} Novita images but this session has {error.left} left of the "
                f"{error.limit} the app's owner allows. Use fewer photos or prompts, or choose the offline "
                "studio in the sidebar.")
    return f"The app's owner allows {images_} per session, and this session has used them. {OFFLINE_STILL_WORKS}"


def paused_sentence(kind: str, seconds_left: float, *, offline_instead: bool = False) -> str:
    """What everyone is told while the app holds off sending on the owner's key; `offline_instead` when
    Automatic already makes the results with the offline studio meanwhile."""
    why = PAUSED.get(kind, "Novita refused this app's key")
    minutes = max(1, round(seconds_left / 60))
    then = ("Meanwhile results are made by the offline studio; for photographic scenes, paste your own Novita "
            "key in the sidebar." if offline_instead else OFFLINE_STILL_WORKS)
    return f"Novita is paused for everyone for about {minutes} min: {why}. The owner has been told. {then}"


def _novita_sentence(error: novita.NovitaError, *, owner_key: bool) -> str:
    kind = error.kind
    if kind in OWNER_FAULTS:
        on_owner, on_own = OWNER_FAULTS[kind]
        return f"{on_owner} {OFFLINE_STILL_WORKS}" if owner_key else on_own
    if kind in SETUP_FAULTS:
        return f"{SETUP_FAULTS[kind]} The owner can see what to fix in the app's log. {OFFLINE_STILL_WORKS}"
    if kind in PERSON_FAULTS:
        return PERSON_FAULTS[kind]
    said = _said(error)
    if kind == "refused":
        return f"Novita refused this photo or prompt.{said} Change the prompt or try another photo."
    if kind == "novita":
        return f"Novita's engine failed on its side.{said} Press Try again in a moment."
    if kind == "rate_limit":
        wait = getattr(error, "retry_after", None)
        when = f"in about {wait:.0f} s" if wait else "in a minute"
        return f"Novita is getting too many requests for this key. Try again {when}."
    if kind == "task_failed":
        if error.about_content:
            return (f"Novita could not make this image on its side.{_reason(error)} Rephrase the prompt and press "
                    "Replace background again, or try another photo.")
        return f"Novita could not make this image on its side.{_reason(error)} Press Try again in a moment."
    if kind == "task_timeout":
        return (f"Novita did not finish the image within {error.seconds:g} s, so the app stopped waiting. Press "
                "Try again, or try later when Novita is less busy.")
    if kind == "prompt_too_long":
        return (f"The prompt is {error.length} characters long; Novita is sent at most {error.limit}. Shorten it "
                "and press Replace background again.")
    if kind == "timeout":
        if error.connecting:
            return "Could not reach Novita in time from this app's server. Press Try again in a moment."
        return (f"Novita took longer than {error.seconds:g} s to answer. Press Try again in a moment, or try a "
                "smaller photo.")
    if kind == "settings":
        formats = getattr(error, "facts", {}).get("image_types")
        said = f"Output format must be one of {', '.join(formats)}." if formats else error
        return f"This app's Novita settings need fixing by its owner: {said}"
    status = getattr(error, "status", None)
    return (f"Novita answered with an unexpected error{f' (HTTP {status})' if status else ''}. Try again later; "
            "if it keeps happening, tell the app's owner.")


def _reason(error: novita.TaskFailedError) -> str:
    return f" Novita said: “{error.reason}”." if error.reason else ""


def _said(error: novita.NovitaError) -> str:
    message = getattr(error, "message", None)
    return f" Novita said: “{message}”." if message else ""


# --- refusals: a photo, an upload, a cancel, the offline engine ------------------------------------------


def file_label(file: str | None, what: str = "file") -> str:
    """How a sentence names a file: its base name quoted, cut short and stripped of control characters."""
    name = re.split(r"[\\/]", file or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable())[:80]
    return f"“{name}”" if name else f"This {what}"


def megabytes(size: int) -> str:
    """Size in MB for a sentence; one decimal near the limit so "30 MB; the limit is 30 MB" never shows."""
    size_mb = size / MB
    return f"{size_mb:.0f}" if size_mb >= 31 else f"{size_mb:.1f}"


def _named(facts: dict) -> str:
    """A file as a refusal names it: "“a.jpg”", or "“a.jpg” in “shoot.zip”" for a ZIP's member."""
    shown = file_label(facts.get("file"), facts.get("what", "file"))
    return f"{shown} in {file_label(facts['zip'])}" if facts.get("zip") else shown


def _batch_full(f: dict) -> str:
    full = (f"one batch takes at most {f['photos']} photos" if "photos" in f
            else f"one batch takes at most {f['bytes'] // MB} MB of photos")
    if f["more"]:
        return f"{_named(f)} and {f['more']} more were left out: {full}. Run them in another batch."
    return f"{_named(f)} was left out: {full}. Run it in another batch."


REFUSALS: dict[str, Callable[[dict], str]] = {
    # a photo (images.ImageError)
    "empty": lambda f: f"{_named(f)} is empty (0 bytes). Choose the photo again, or export it again from its app.",
    "too_big": lambda f: (f"{_named(f)} is {megabytes(f['size'])} MB; the limit is {f['limit'] // MB} MB. Export a "
                          "smaller JPEG and try again."),
    "not_a_photo": lambda f: (f"{_named(f)} isn't a photo this app can read. Choose a JPEG, PNG, WEBP, HEIC, AVIF, "
                              "BMP, GIF or TIFF."),
    "too_many_pixels": lambda f: (f"{_named(f)} is {f['width']} × {f['height']} pixels, more than the "
                                  f"{f['limit'] // 1_000_000} megapixels this app can safely open. Resize it to "
                                  "2048 × 2048 pixels or less, then retry."),
    "too_many_pages": lambda f: (f"{_named(f)} has more than {f['limit']} pages; this app reads TIFFs of up to "
                                 f"{f['limit']}. Save the page you want as its own file, then retry."),
    "too_much_memory": lambda f: (f"{_named(f)} is {f['width']} × {f['height']} pixels: opening it would take "
                                  f"{-(-f['needed'] // MB)} MB of memory, more than the {f['limit'] // MB} MB this "
                                  "app allows one photo. Resize it to 2048 × 2048 pixels or less (or save it as a "
                                  "JPEG), then retry."),
    "bomb": lambda f: f"{_named(f)} has too many pixels to open. Resize it to 2048 × 2048 pixels or less, then retry.",
    "damaged": lambda f: (f"{_named(f)} can't be opened: it looks damaged or incomplete. Export or download it "
                          "again, then retry."),
    # an upload left out of a batch (uploads.UploadRefusal)
    "upload_too_big": lambda f: (f"{_named(f)} is {megabytes(f['size'])} MB; the limit is {f['limit'] // MB} MB a "
                                 "photo. " + ("Export a smaller one and add it on its own." if f.get("zip")
                                              else "Export a smaller JPEG and add it again.")),
    "zip_too_many_files": lambda f: (f"{file_label(f['zip'])} holds more than {f['limit']} files, so it was not "
                                     f"opened. Put up to {f['photos']} photos in a ZIP and add it again."),
    "zip_unreadable": lambda f: (f"{file_label(f['zip'])} could not be opened (damaged or password-protected). "
                                 "Upload the photos themselves or a plain ZIP."),
    "member_unreadable": lambda f: (f"{_named(f)} could not be read (damaged, encrypted or bigger than it says). "
                                    "Add that photo on its own."),
    "more_left_out": lambda f: (f"{f['count']} more files were left out for the same reasons; check them and add "
                                "them again."),
    "batch_full": _batch_full,
    # a cancel (jobs.Cancelled)
    "cancelled_in_line": lambda f: "Cancelled while waiting; nothing was sent to Novita.",
    "cancelled_before_sent": lambda f: "Cancelled before it was sent; nothing was spent.",
    # the offline engine
    "no_transparent_jpeg": lambda f: NO_TRANSPARENT_JPEG,
    # touch-up strokes (touchup.TouchUpError)
    "no_strokes": lambda f: "Paint at least one stroke with Keep or Remove, then press Apply.",
    "too_many_strokes": lambda f: (f"That is more than {f['limit']} strokes. Press Reset in the canvas's toolbar "
                                   "and paint a few longer ones."),
    "too_many_points": lambda f: "One stroke is too long to use. Undo it and paint it as two or three shorter ones.",
    "empty_stroke": lambda f: "A stroke has no points. Undo it and paint it again.",
    "not_a_number": lambda f: "A stroke could not be read. Undo it and paint it again.",
    "not_a_stroke": lambda f: "A stroke could not be read. Undo it and paint it again.",
    "no_photo": lambda f: "The photo of this result is no longer here. Make the result again, then touch it up.",
}


def refusal_sentence(error: Refusal) -> str:
    """The sentence for a refusal: it names the file and the limit where there are some, and the next step."""
    word = REFUSALS.get(error.kind)
    return word(error.facts) if word is not None else UNEXPECTED


# --- notes: what was changed in a photo or a result, and the steps of a run ------------------------------

_SENDING = {engines.NOVITA: "Sending the photo to Novita",
            engines.OFFLINE: "Cutting out the subject and painting a backdrop"}


def _making(f: dict) -> str:
    done = f": {f['progress']} %" if f.get("progress") else ""
    left = f", about {f['eta']:.0f} s left" if f.get("eta") else ""
    return f"Novita is making the new background{done}{left}"


NOTES: dict[str, Callable[[dict], str]] = {
    # what preparing changed in the photo (images.prepare)
    "scaled_down": lambda f: (f"Your photo was scaled down from {f['width']} × {f['height']} to {f['to_width']} × "
                              f"{f['to_height']} pixels to fit the background service's {f['limit']} × "
                              f"{f['limit']} limit."),
    "turned_upright": lambda f: "Your photo was turned upright using the orientation your camera recorded.",
    "first_frame": lambda f: "Your file is an animation, so only its first frame was used.",
    "first_page": lambda f: "Your file has several pages, so only the first page was used.",
    "cmyk": lambda f: "Your photo's print colours (CMYK) were converted to screen colours (RGB).",
    "high_bit_depth": lambda f: "Your photo's high bit depth was reduced to the standard 8 bits per channel.",
    # what was done to a result (jobs.finish, the engines)
    "enlarged": lambda f: (f"Novita made this at {f['width']} × {f['height']} px, a lower resolution than your "
                           f"photo's {f['photo_width']} × {f['photo_height']}; it was enlarged to fit."),
    "subject_laid_back": lambda f: "Your subject is the photo's own, laid over Novita's new scene.",
    "subject_moved": lambda f: "Novita moved or resized the subject, so its image is shown as it made it.",
    "converted": lambda f: "Novita sent another format; it was converted here.",
    "backdrop_upscaled": lambda f: "Your background photo was smaller than the frame, so it was enlarged to cover it.",
    "subject_anchored": lambda f: (f"Your subject is cut by the photo's {' and '.join(f['edges'])} edge, so it stays "
                                   "flush with that edge of the frame."),
    # the steps and stages of a run (runs, jobs)
    "waiting_worker": lambda f: "Waiting for a free worker",
    "preparing": lambda f: "Preparing the photo",
    "waiting_turn": lambda f: "Waiting its turn: this server makes one photo at a time",
    "prepared": lambda f: f"Prepared the photo: {f['width']} × {f['height']} {f['format'].upper()}",
    "waiting_slot": lambda f: "Waiting for a free slot on the shared key",
    "back_in_line": lambda f: "Novita was busy; back in line for the shared key",
    "collecting_again": lambda f: "Collecting the image Novita was already making: nothing is paid again",
    "sending": lambda f: _SENDING.get(f["family"], "Cutting out the subject"),
    "accepted": lambda f: "Novita accepted the photo",
    "queued": lambda f: "Queued at Novita",
    "making": _making,
    "answered": lambda f: f"{engines.LABELS[f['family']]} answered in {f['seconds']:.1f} s",
    "fitting": lambda f: "Fitting the result to your photo",
    "laying_back": lambda f: "Laying your subject back over the new scene",
    "previews": lambda f: "Making the previews",
    "done": lambda f: "Done",
}


def note_sentence(said: Note | list | str) -> str:
    """The words for a note: a `Note`, a [kind, facts] pair as a kept result stores it, or a sentence kept
    before results stored their notes as facts (shown as it is)."""
    if isinstance(said, str):
        return said
    kind, facts = said
    return NOTES[kind](dict(facts))


def note_sentences(notes: Iterable[Note | list | str]) -> list[str]:
    """`note_sentence` of each note, in order."""
    return [note_sentence(said) for said in notes]
