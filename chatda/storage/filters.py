"""Milvus boolean filter expressions for article search, built only from validated values.

Facet values come from users, so none is ever pasted into an expression as-is. Two forms:

* templated (real Milvus 2.5+): the expression holds ``{name}`` placeholders and the values
  travel separately in ``filter_params``; the server never parses user text as syntax.
* inline (milvus-lite 3.2, whose parser rejects placeholders): every string passes
  ``quote()``: characters outside a whitelist of Unicode classes (letters, marks, digits,
  punctuation, symbols, plain spaces) are rejected, and the two characters that are special
  inside a double-quoted Milvus literal, backslash and double quote, are backslash-escaped.
  Both parsers (Milvus's grammar and milvus-lite's tokenizer) read ``\\`` and ``\"`` that way.

Values are validated identically in both forms, so a query accepted locally is accepted in
production. Callers pass ``filter_params`` along even when it is empty:
``client.search(..., filter=expr, filter_params=params)``.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

MAX_VALUES = 64
MAX_VALUE_CHARS = 256
_ALLOWED_CLASSES = ("L", "M", "N", "P", "S")  # Unicode major classes; plus the plain space


def check_value(value: str) -> str:
    """Return ``value`` if it may appear in a filter, else raise ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"filter value must be a string, got {type(value).__name__}")
    if not value or len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"filter value must have 1..{MAX_VALUE_CHARS} characters")
    for ch in value:
        if ch != " " and unicodedata.category(ch)[0] not in _ALLOWED_CLASSES:
            raise ValueError(f"filter value contains a disallowed character U+{ord(ch):04X}")
    return value


def quote(value: str) -> str:
    """A double-quoted Milvus string literal that denotes exactly ``value``."""
    escaped = check_value(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _values(name: str, values: list[str] | None) -> list[str] | None:
    """Validated, de-duplicated values; None or an empty list both mean "no constraint"."""
    if not values:
        return None
    unique = list(dict.fromkeys(check_value(v) for v in values))
    if len(unique) > MAX_VALUES:
        raise ValueError(f"at most {MAX_VALUES} {name} values")
    return unique


def _epoch(name: str, moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return int(moment.timestamp())


def build_filter(
    category: list[str] | None,
    series: list[str] | None,
    tags: list[str] | None,
    published_from: datetime | None,
    published_to: datetime | None,
    *,
    templated: bool = False,
) -> tuple[str, dict[str, Any]]:
    """``(expression, filter_params)`` selecting chunks that match every given facet.

    Within a facet the values are alternatives: any listed category, any listed series, any
    listed tag. The publication window is inclusive on both ends. Pass
    ``templated=Backend.filter_templates`` (see ``chatda.storage.milvus_client``).
    Returns ``("", {})`` when nothing constrains the search.
    """
    start, end = _epoch("published_from", published_from), _epoch("published_to", published_to)
    if start is not None and end is not None and start > end:
        raise ValueError("published_from is after published_to")
    terms: list[str] = []
    params: dict[str, Any] = {}

    def add(template: str, key: str, value: Any, inline: str) -> None:
        if templated:
            terms.append(template.format(f"{{{key}}}"))
            params[key] = value
        else:
            terms.append(template.format(inline))

    for field, values in (
        ("category", _values("category", category)),
        ("series", _values("series", series)),
    ):
        if values is not None:
            add(f"{field} in {{}}", field, values, f"[{', '.join(map(quote, values))}]")
    tag_values = _values("tags", tags)
    if tag_values is not None:
        add(
            "array_contains_any(tags, {})",
            "tags",
            tag_values,
            f"[{', '.join(map(quote, tag_values))}]",
        )
    if start is not None:
        add("published_at >= {}", "published_from", start, str(start))
    if end is not None:
        add("published_at <= {}", "published_to", end, str(end))
    return " and ".join(terms), params
