"""Showing text a person gave (prompts, file names, sentences quoting them) inside Markdown-rendering
elements, exactly as given: no formatting, no links, no HTML, no icons, no reordering."""

from __future__ import annotations

import re

from services.usertext import without_bidi

# What can start formatting, a link, HTML, maths, an entity, or a colour or icon directive (":red[",
# ":smile:") mid-sentence. Escaping every dot or hyphen would only fill the source with backslashes: those
# matter at a line's start and are handled below.
MARKDOWN_SPECIALS = frozenset("\\`*_[]<>#|~$&:")
# The page turns bare web and e-mail addresses into links after Markdown is parsed, so escapes cannot stop
# it; an invisible word joiner inside "https://", "www." and before "@" breaks the pattern it looks for.
JOINER = "\u2060"
_BARE_LINK = re.compile(  # only where a link would really form: an address follows, not a bare "https://"
    r"(?i)(?<=\bhttp)(?=s?\\://[-\w])|(?<=\bwww)(?=\.[-\w])|(?<=[-\w.+])(?=@[-\w]+\.[-\w])")
_MARKER = re.compile(r"^([ \t]*)([-+=])", re.MULTILINE)  # a list item or a setext heading's underline
_NUMBERED = re.compile(r"^([ \t]*\d+)([.)])", re.MULTILINE)  # "1. " starts a numbered list


def escape_markdown(text: str) -> str:
    """User text as literal Markdown source: bidi controls removed, specials backslash-escaped, so it
    renders exactly as typed (with a word joiner where a bare link would start) and becomes no link, list,
    heading or HTML."""
    text = "".join("\\" + ch if ch in MARKDOWN_SPECIALS else ch for ch in without_bidi(text))
    text = _BARE_LINK.sub(JOINER, text)
    text = _MARKER.sub(r"\1\\\2", text)
    return _NUMBERED.sub(r"\1\\\2", text)
