"""Showing text a person typed inside Markdown-rendering elements, exactly as typed."""

# Only what can start formatting, a link, HTML or maths mid-sentence; escaping more ('.', '-', ':')
# would put backslashes into every sentence's source for no gain.
MARKDOWN_SPECIALS = set("\\`*_[]<>#|~$")


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown and HTML specials so user text renders literally and runs nothing."""
    return "".join("\\" + ch if ch in MARKDOWN_SPECIALS else ch for ch in text)
