"""Text that reaches people and other programs: one cleaner per medium, and nothing from a
file name that a terminal, a Markdown or HTML renderer, a spreadsheet or git could read as
a command.

User strings (file and folder names, labels, commit subjects, error messages that quote
them) are data. Each medium has one helper here, and every writer uses it:

| medium | helper |
| --- | --- |
| a terminal (CLI, console cells) | :func:`clean_text`, or :func:`rich_text` for a rich/Textual ``Text`` |
| rich/Textual markup strings (only where a markup string is unavoidable) | :func:`escape_markup` |
| Markdown (reports) | :func:`escape_md`, :func:`md_url` |
| HTML (run report, comparison page, luigid's visualiser) | :func:`html_text`, :func:`status_message`; the one page template :func:`html_page` |
| CSV read by spreadsheets (the manifest) | :func:`csv_cell` (and :func:`csv_value` to read back) |
| git commit messages | :func:`commit_message` |
| plot titles and tick labels (matplotlib) | :func:`plot_text` |

:func:`clean_text` drops ESC/CSI/OSC sequences whole and replaces other control and
bidi-override characters, so a label folder named ``*|<b>`` or holding ``\\x1b[2J`` can
neither break a table nor clear a screen.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING
from urllib.parse import quote

from kwsops.secrets import scrub

if TYPE_CHECKING:
    from rich.text import Text

# ESC/CSI/OSC sequences first (dropped whole), then any other control or bidi-override character
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?|\x9b")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&$])")
# a spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CSV_GUARD = "'"


def one_line(text: str, limit: int = 160) -> str:
    """Whitespace runs (newlines included) folded to one space, long text cut."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_line(exc: BaseException) -> str:
    """An error as ``Type: first line of the message``: known secrets masked, printable."""
    lines = str(exc).strip().splitlines()
    name = type(exc).__name__
    return clean_text(scrub(f"{name}: {lines[0]}" if lines else name), 2000)


# a terminal ------------------------------------------------------------------------------------
def clean_text(text: object, limit: int = 200) -> str:
    """One printable line: escape sequences removed, other control characters (newlines,
    tabs, bidi overrides) replaced by a space or U+FFFD, long text cut."""
    text = _ESCAPES.sub("", str(text))
    text = _CONTROL.sub(lambda m: " " if m.group() in "\t\n\r" else "\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rich_text(text: object, style: str = "", limit: int = 200) -> Text:
    """A rich ``Text`` of :func:`clean_text`: never parsed as markup (rich, Textual cells)."""
    from rich.text import Text

    return Text(clean_text(text, limit), style=style, end="")


def escape_markup(text: object, limit: int = 200) -> str:
    """:func:`clean_text` with ``[`` escaped, for the few places that take a markup string."""
    from rich.markup import escape

    return escape(clean_text(text, limit))


# Markdown --------------------------------------------------------------------------------------
def escape_md(text: object, limit: int = 200) -> str:
    """:func:`clean_text`, then every Markdown-active character backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", clean_text(text, limit))


def md_url(url: object) -> str:
    """A link target that cannot end the Markdown link early: unsafe characters %-encoded."""
    return quote(clean_text(url, 2000), safe=":/?#@!$&'*+,;=%-._~")


# HTML ------------------------------------------------------------------------------------------
def html_text(text: object, limit: int = 2000) -> str:
    """:func:`clean_text`, then HTML-escaped (quotes too: safe in attributes)."""
    return html.escape(clean_text(text, limit), quote=True)


HTML_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px}}{style}</style></head>
<body>
{body}</body></html>
"""


def html_page(title: object, body: str, style: str = "") -> str:
    """The one self-contained HTML page kwsops writes (the comparison report, a run's report):
    ``body`` is HTML already; ``style`` adds CSS rules of the page's own."""
    return HTML_PAGE.format(title=html_text(title), body=body, style=style)


def status_message(text: object, limit: int = 300) -> str:
    """A progress detail for luigid's status message, which Luigi's visualiser shows as HTML."""
    return html_text(text, limit)


# CSV -------------------------------------------------------------------------------------------
def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: a cell that would start a formula (``=``, ``+``,
    ``-``, ``@``, tab, CR) gets a leading ``'``, and so does one already starting with ``'``,
    so :func:`csv_value` gives back exactly what was written."""
    text = "" if value is None else str(value)
    return _CSV_GUARD + text if text.startswith((*_FORMULA_START, _CSV_GUARD)) else text


def csv_value(cell: str) -> str:
    """The value :func:`csv_cell` wrote."""
    guarded = cell.startswith(_CSV_GUARD) and cell[1:2] in (*_FORMULA_START, _CSV_GUARD)
    return cell[1:] if guarded and len(cell) > 1 else cell


# git -------------------------------------------------------------------------------------------
def commit_message(text: object, limit: int = 200) -> str:
    """A one-line git commit subject: printable, no newline to start a body or trailers."""
    return one_line(clean_text(text, 10_000), limit)


# matplotlib -------------------------------------------------------------------------------------
def plot_text(text: object, limit: int = 40) -> str:
    """A title or tick label: printable, and ``$`` escaped (it would start mathtext, where a
    name like ``$\\frac{1}{0}$`` fails the figure)."""
    return clean_text(text, limit).replace("$", r"\$")


def plural(n: int, word: str) -> str:
    """``1 revision``, ``2 revisions``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
