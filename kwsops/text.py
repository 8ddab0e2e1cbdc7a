"""Text that reaches people: one line per message, and nothing from a file name that a
terminal or a Markdown renderer could read as a command.

Anything that comes from a file or a folder name (labels, commit subjects, paths) goes through
:func:`clean_text` before it is shown, and through :func:`escape_md` before it is written into
Markdown: a label folder named ``*|<b>`` or holding an ESC sequence can neither break a table
nor reach a terminal as a control sequence.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from kwsops.secrets import scrub

# ESC/CSI/OSC sequences first (dropped whole), then any other control or bidi-override character
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?|\x9b")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&$])")


def one_line(text: str, limit: int = 160) -> str:
    """Whitespace runs (newlines included) folded to one space, long text cut."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_line(exc: BaseException) -> str:
    """An error as ``Type: first line of the message``, known secrets masked."""
    lines = str(exc).strip().splitlines()
    name = type(exc).__name__
    return scrub(f"{name}: {lines[0]}" if lines else name)


def clean_text(text: object, limit: int = 200) -> str:
    """One printable line: escape sequences removed, other control characters (newlines,
    tabs, bidi overrides) replaced by a space or U+FFFD, long text cut."""
    text = _ESCAPES.sub("", str(text))
    text = _CONTROL.sub(lambda m: " " if m.group() in "\t\n\r" else "\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape_md(text: object, limit: int = 200) -> str:
    """:func:`clean_text`, then every Markdown-active character backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", clean_text(text, limit))


def md_url(url: object) -> str:
    """A link target that cannot end the Markdown link early: unsafe characters %-encoded."""
    return quote(clean_text(url, 2000), safe=":/?#@!$&'*+,;=%-._~")
