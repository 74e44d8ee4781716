"""What must never be shown, in a log line or on a terminal: secret values and URL passwords.

One rule for every display of text: ``chatda config`` masks settings with it, the logging set-up
(chatda.logs) applies it to every rendered line, tracebacks included. A URL's password is
masked wherever it appears, configured or not (``postgresql+psycopg://user:***@host/db``), and
every configured secret value (tokens, the passwords inside configured URLs) is replaced by
``***`` wherever it appears, for example inside an ``Authorization: Bearer …`` header.

A secret is found in every form a line can carry it, not only as written: a client may
percent-encode any of its characters in a URL (the access log prints the query string as sent:
``?token=Zk3%2Bq%2FPw9…``), in upper- or lower-case hex, with ``+`` for a space, encoded twice,
or escaped as a JSON string (JSON-mode lines, ``\\u`` escapes included). Each character of the
secret matches any of its own forms, so a mix of them within one secret is masked too, and the
span masked is the one in the line as written.
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


def _char_forms(char: str) -> str:
    """A pattern matching ``char`` in any form a log line may carry it: as written, escaped as
    in a JSON string, or percent-encoded (its UTF-8 bytes, hex in either case, the ``%`` itself
    possibly encoded again as ``%25``), and ``+`` for a space (a form-encoded query)."""
    forms = {re.escape(char)}
    forms.update(re.escape(json.dumps(char, ensure_ascii=flag)[1:-1]) for flag in (False, True))
    if char == " ":
        forms.add(re.escape("+"))
    encoded = "".join(f"%(?:25)?{byte:02X}" for byte in char.encode("utf-8"))
    alternatives = "|".join(sorted(forms, key=len, reverse=True))
    return f"(?:{alternatives}|(?i:{encoded}))"


def _secret_pattern(secret: str) -> str:
    """A pattern matching ``secret`` with each character in any of its forms (``_char_forms``)."""
    return "".join(map(_char_forms, secret))


class Redactor:
    """Replaces configured secret values and URL passwords in rendered text by MASK."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # as configured, and decoded (a password percent-encoded inside a configured URL)
        values = {form for secret in secrets for form in (secret, unquote(secret))}
        # longest first, so a secret that contains another is masked whole
        kept = sorted((v for v in values if len(v) >= MIN_SECRET_CHARS), key=len, reverse=True)
        self._pattern = re.compile("|".join(map(_secret_pattern, kept))) if kept else None

    def __call__(self, text: str) -> str:
        text = mask_url_passwords(text)
        return self._pattern.sub(MASK, text) if self._pattern else text
