"""The one place where a failure becomes the sentence a person reads: services raise errors that carry
facts (kind, who must act, Novita's reason and message); every page shows them through `describe`."""

from __future__ import annotations

from services import budget, images, jobs, novita, quota

UNEXPECTED = ("Something went wrong on our side while making this image. Press Try again; if it keeps "
              "happening, try another photo.")
ROUGHER_CUTOUTS = ("Cut-outs made on this server are rougher here: the subject model installs only on Python 3.12 "
                   "and older. For better ones, deploy the app on Python 3.12.")
OFFLINE_STILL_WORKS = ("The offline studio still works: choose it in the sidebar, or paste your own Novita key "
                       "there.")

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
    elif isinstance(error, (images.ImageError, jobs.Cancelled)):
        sentence = str(error)  # their text is already the sentence: it names the file and the next step
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
        return f"This app's Novita settings need fixing by its owner: {error}"
    status = getattr(error, "status", None)
    return (f"Novita answered with an unexpected error{f' (HTTP {status})' if status else ''}. Try again later; "
            "if it keeps happening, tell the app's owner.")


def _reason(error: novita.TaskFailedError) -> str:
    return f" Novita said: “{error.reason}”." if error.reason else ""


def _said(error: novita.NovitaError) -> str:
    message = getattr(error, "message", None)
    return f" Novita said: “{message}”." if message else ""
