"""User text inside Markdown-rendering elements: literal, linkless, and free of direction overrides.
The browser half (no <a> on the page) is tests/e2e/test_hostile_web.py."""

from __future__ import annotations

import pytest

from components.text import JOINER, escape_markdown
from services.items import download_name
from services.usertext import BIDI_CONTROLS, without_bidi


@pytest.mark.parametrize(("given", "source"), [
    ("on a marble counter, soft light", "on a marble counter, soft light"),
    ("notes-2.png", "notes-2.png"),
    ("**bold** _it_ `code` <b>x</b> [a](b) #h $x$ ~s~ |t| &amp;",
     "\\*\\*bold\\*\\* \\_it\\_ \\`code\\` \\<b\\>x\\</b\\> \\[a\\](b) \\#h \\$x\\$ \\~s\\~ \\|t\\| \\&amp;"),
    (":smile: :red[x] :material/home:", "\\:smile\\: \\:red\\[x\\] \\:material/home\\:"),
    ("https://evil.example/x", f"http{JOINER}s\\://evil.example/x"),
    ("HTTP://evil.example", f"HTTP{JOINER}\\://evil.example"),
    ("go to www.evil.example", f"go to www{JOINER}.evil.example"),
    ("me@evil.example", f"me{JOINER}@evil.example"),
    ("- item\n1. one\n  + two\n===", "\\- item\n1\\. one\n  \\+ two\n\\==="),
    ("photo\u202egpj.exe", "photogpj.exe"),
])
def test_user_text_becomes_literal_markdown(given, source):
    assert escape_markdown(given) == source


def test_every_bidi_control_is_removed_and_nothing_else():
    text = "a" + "".join(sorted(BIDI_CONTROLS)) + "b\u200d·é"
    assert without_bidi(text) == "ab\u200d·é"
    assert {"\u202a", "\u202e", "\u2066", "\u2069", "\u200e", "\u200f", "\u061c"} <= BIDI_CONTROLS


def test_a_download_name_carries_no_override():
    name = download_name("invoice\u202egpj.exe.jpg", "on a\u2067 beach", "png")
    assert name == "invoicegpj-exe-on-a-beach.png"
    assert not set(name) & BIDI_CONTROLS


@pytest.mark.parametrize("sentence", [
    "NOVITA_BASE_URL uses plain http:// to a host; use https:// instead.",
    "Write to the owner @ the office.",
    "www is not an address",
])
def test_a_scheme_or_at_sign_with_no_address_after_it_is_left_alone(sentence):
    assert JOINER not in escape_markdown(sentence)
