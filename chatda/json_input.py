"""Untrusted JSON → Python values: one decoder for every door (API bodies, Kafka records).

The standard library's ``json`` recurses once per nesting level, so a record of 100,000 ``[``
raises ``RecursionError`` instead of a decode error; it turns a 5,000-digit number into a
``ValueError`` that is not a ``JSONDecodeError``; and it accepts lone surrogates (``"\\udfff"``)
that can never be encoded as UTF-8 again, so they fail later, far from the input. orjson refuses
all three (and invalid UTF-8) as ``JSONDecodeError`` at a depth of 1,024, so a caller maps exactly
one exception to a 4xx or a dead-letter record.
"""

from __future__ import annotations

from json import JSONDecodeError
from typing import Any

import orjson

__all__ = ["JSONDecodeError", "loads"]


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """The decoded value; raises ``JSONDecodeError`` (a ``ValueError``) for anything invalid."""
    return orjson.loads(data)
