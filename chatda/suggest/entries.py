"""What goes into the suggestion index and what comes out of it."""

from dataclasses import dataclass
from typing import Literal

Match = Literal["prefix", "chosung", "qwerty", "typo", "infix"]
KINDS = ("intent", "hint", "query", "title")
KIND_PRIORITY = ("intent", "title", "hint", "query")
"""When one text comes in several kinds, the one that leads somewhere (an intent, an article)
is kept, before curated hints and past queries."""


@dataclass(frozen=True, slots=True)
class SuggestEntry:
    """A completion candidate; `ref` points at what picking it opens (an intent id, an article)."""

    text: str
    kind: str
    ref: str | None = None
    popularity: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown suggestion kind {self.kind!r}; expected one of {KINDS}")


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A ranked completion; `highlight` holds `(start, end)` character spans of `text` that the
    typed input matched, split at spaces, for the UI to bold."""

    text: str
    kind: str
    ref: str | None
    score: float
    match: Match
    highlight: list[tuple[int, int]]
