"""Keep secrets out of everything kwsops writes or shows (logs, events, reports, errors)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from urllib.parse import quote

SECRET_ENV_VARS = (
    "DVC_PASSWORD",
    "CLEARML_API_SECRET_KEY",
    "CLEARML_API_ACCESS_KEY",
    "WEBDAV_PASSWORD",
)
MASK = "***"
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@\s:]*):[^/@\s]*@")
_extra: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret seen at run time (e.g. typed at a prompt) so it is masked too."""
    if value and len(value) >= 3:
        _extra.add(value)


def known_secrets() -> list[str]:
    values = {os.environ.get(name, "") for name in SECRET_ENV_VARS} | _extra
    return sorted((v for v in values if v and len(v) >= 3), key=len, reverse=True)


def scrub(text: str, extra: Iterable[str | None] = ()) -> str:
    """Mask known secrets, ``extra`` ones (also URL-encoded), and any password in a URL."""
    if not text:
        return text
    values = sorted({v for v in (*known_secrets(), *extra) if v}, key=len, reverse=True)
    for value in values:
        text = text.replace(value, MASK).replace(quote(value, safe=""), MASK)
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask known secrets in a log record's message and traceback, in place."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: the handler will say so
        return record
    cleaned = scrub(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[1] is not None:
        text = scrub(logging.Formatter().formatException(record.exc_info))
        record.exc_info, record.exc_text = None, text
    return record


class ScrubbingFilter(logging.Filter):
    """A logging filter that masks secrets in every record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


_factory_installed = False


def scrub_all_log_records() -> None:
    """Mask secrets in every log record this process makes, whichever handler prints it
    (Luigi's own console handler too), by wrapping the logging record factory once."""
    global _factory_installed
    if _factory_installed:
        return
    make = logging.getLogRecordFactory()

    def scrubbed(*args: object, **kwargs: object) -> logging.LogRecord:
        return scrub_record(make(*args, **kwargs))

    logging.setLogRecordFactory(scrubbed)
    _factory_installed = True
