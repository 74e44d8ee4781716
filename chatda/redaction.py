"""What must never be shown, in a log line or on a terminal: secret values and URL passwords.

One rule for every display of text: ``chatda config`` masks settings with it, the logging set-up
(chatda.logs) applies it to every rendered line, tracebacks included. A URL's password is
masked wherever it appears, configured or not (``postgresql+psycopg://user:***@host/db``), and
every configured secret value (tokens, the passwords inside configured URLs) is replaced by
``***`` wherever it appears, for example inside an ``Authorization: Bearer …`` header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

MASK = "***"

MIN_SECRET_CHARS = 4
"""Shorter configured values are not searched for: replacing every "ab" would garble whole
lines while hiding nothing a guess could not find. Passwords inside URLs are masked whatever
their length, by position."""

# scheme://user:password@ — the password runs to the last "@" before the host part
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"]*:)[^\s/'\"]*(?=@)")


def mask_url_passwords(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` replaced by MASK."""
    return _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)


def url_password(value: str) -> str | None:
    """The password inside a URL (both as written and percent-decoded are secrets), or None."""
    try:
        password = urlsplit(value).password
    except ValueError:  # not a URL (a bootstrap list "host:port,host:port", a bad port)
        return None
    return password or None


class Redactor:
    """Replaces configured secret values and URL passwords in rendered text by MASK."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = set()
        for secret in secrets:
            for form in (secret, unquote(secret)):
                # as written, and as a JSON string would carry it (JSON-mode lines)
                values.update({form, json.dumps(form, ensure_ascii=False)[1:-1]})
        # longest first, so a secret that contains another is masked whole
        kept = sorted((v for v in values if len(v) >= MIN_SECRET_CHARS), key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, kept))) if kept else None

    def __call__(self, text: str) -> str:
        text = mask_url_passwords(text)
        return self._pattern.sub(MASK, text) if self._pattern else text
