"""The suggestion index: built once from entries, then only read, so a server swaps whole indexes.

Typed input is matched at the keystroke level, in order of how sure the match is:

* prefix  – the input's keystrokes begin the entry's ("송그", "송금ㄴ" → "송금 내역");
* chosung – a 초성 abbreviation ("ㅅㄱ", "ㅅㄱ ㄴㅇ" → "송금 내역");
* qwerty  – Korean typed with the Latin layout on ("thdrma" → "송금");
* typo    – a few keystroke edits away from a prefix ("송긍" → "송금", "환젼" → "환전");
* infix   – a later word of the entry starts with the input ("내역" → "송금 내역").

The stages run in that order and stop once `limit` entries are found, since no later stage can
outrank an earlier one; the typo walk, the only costly stage, mostly runs when the rest failed.
"""

import dataclasses
from collections.abc import Callable, Iterable

from chatda.suggest.entries import KIND_PRIORITY, Match, SuggestEntry, Suggestion
from chatda.suggest.highlight import highlight
from chatda.suggest.keys import EntryKeys, entry_keys, query_keys
from chatda.suggest.prefix_table import PrefixTable, Row
from chatda.suggest.scoring import allowed_edits, clean_popularity, entry_score, match_score
from chatda.suggest.typo import fuzzy_prefix_ranges
from chatda.text.jamo import is_chosung_query
from chatda.text.keyboard import qwerty_keystrokes
from chatda.text.normalize import normalize_query

MAX_QUERY_CHARS = 64
"""Longer input is not someone typing a prefix; it gets no suggestions."""
MAX_ENTRY_CHARS = 200
"""Entries are short labels; a longer text is cut to this."""
MAX_TYPO_KEYS = 40


@dataclasses.dataclass(frozen=True, slots=True)
class _Hit:
    score: float
    match: Match
    start: int
    end: int


def _deduplicate(entries: Iterable[SuggestEntry]) -> list[SuggestEntry]:
    """One entry per normalized text: the kind first in KIND_PRIORITY, the highest popularity."""
    best: dict[str, SuggestEntry] = {}
    for entry in entries:
        text = normalize_query(entry.text, MAX_ENTRY_CHARS).text
        if not text:
            continue
        entry = dataclasses.replace(entry, text=text, popularity=clean_popularity(entry.popularity))
        current = best.get(text)
        if current is None:
            best[text] = entry
            continue
        popularity = max(current.popularity, entry.popularity)
        if KIND_PRIORITY.index(entry.kind) < KIND_PRIORITY.index(current.kind):
            current = entry
        best[text] = dataclasses.replace(current, popularity=popularity)
    return list(best.values())


class _Collector:
    """The best hit per entry across stages, and how many more are still wanted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.hits: dict[int, _Hit] = {}

    @property
    def wanted(self) -> int:
        return self.limit - len(self.hits)

    def add(self, entry: int, hit: _Hit) -> None:
        current = self.hits.get(entry)
        if current is None or hit.score > current.score:
            self.hits[entry] = hit


class SuggestionIndex:
    """Completions for typed prefixes over a fixed set of entries (immutable after build)."""

    def __init__(self, entries: Iterable[SuggestEntry]) -> None:
        unique = _deduplicate(entries)
        top = max((entry.popularity for entry in unique), default=0.0)
        self._entries = tuple(unique)
        self._keys: tuple[EntryKeys, ...] = tuple(entry_keys(entry.text) for entry in unique)
        self._within = tuple(entry_score(entry.text, entry.popularity, top) for entry in unique)
        within = self._within
        self._by_keys = PrefixTable(
            (Row(keys.keys, i, 0) for i, keys in enumerate(self._keys)), within
        )
        self._by_chosung = PrefixTable(
            (Row(keys.chosung, i, 0) for i, keys in enumerate(self._keys)), within
        )
        self._by_word_keys = PrefixTable(
            (
                Row(keys.keys[key_at:], i, key_at)
                for i, keys in enumerate(self._keys)
                for key_at, _ in keys.word_starts
            ),
            within,
        )
        self._by_word_chosung = PrefixTable(
            (
                Row(keys.chosung[initial_at:], i, initial_at)
                for i, keys in enumerate(self._keys)
                for _, initial_at in keys.word_starts
            ),
            within,
        )

    def __len__(self) -> int:
        return len(self._entries)

    def suggest(self, prefix: str, limit: int = 10) -> list[Suggestion]:
        """Up to `limit` completions, best first; empty or unusable input gives []."""
        if limit <= 0 or len(prefix) > MAX_QUERY_CHARS * 4:
            return []
        text = normalize_query(prefix).text
        typed = query_keys(text)
        if not typed or len(text) > MAX_QUERY_CHARS:
            return []
        chosung_query = is_chosung_query(text)
        converted = query_keys(qwerty_keystrokes(text))
        latin = converted != typed
        found = _Collector(limit)
        stages: list[tuple[bool, Callable[[], None]]] = [
            (True, lambda: self._prefix(found, typed, "prefix")),
            (chosung_query, lambda: self._chosung(found, typed, "chosung")),
            (latin, lambda: self._qwerty(found, typed, converted)),
            (not chosung_query, lambda: self._typos(found, typed)),
            (latin, lambda: self._typos(found, converted)),
            (True, lambda: self._infix(found, typed, chosung_query)),
        ]
        for enabled, stage in stages:
            if found.wanted <= 0:
                break
            if enabled:
                stage()
        return self._ranked(found)

    def _ranked(self, found: _Collector) -> list[Suggestion]:
        order = sorted(
            found.hits.items(),
            key=lambda item: (-item[1].score, self._entries[item[0]].text),
        )
        suggestions = []
        for entry_id, hit in order[: found.limit]:
            entry = self._entries[entry_id]
            suggestions.append(
                Suggestion(
                    text=entry.text,
                    kind=entry.kind,
                    ref=entry.ref,
                    score=round(hit.score, 6),
                    match=hit.match,
                    highlight=highlight(entry.text, hit.start, hit.end),
                )
            )
        return suggestions

    def _score(self, entry: int) -> float:
        return self._within[entry]

    def _prefix(self, found: _Collector, typed: str, match: Match) -> None:
        for row in self._by_keys.best(typed, found.wanted, found.hits):
            end = self._keys[row.entry].key_chars[len(typed) - 1] + 1
            found.add(row.entry, _Hit(match_score(match, self._score(row.entry)), match, 0, end))

    def _chosung(self, found: _Collector, typed: str, match: Match) -> None:
        for row in self._by_chosung.best(typed, found.wanted, found.hits):
            end = self._keys[row.entry].chosung_chars[len(typed) - 1] + 1
            found.add(row.entry, _Hit(match_score(match, self._score(row.entry)), match, 0, end))

    def _qwerty(self, found: _Collector, typed: str, converted: str) -> None:
        """Korean typed on the Latin layout, all of it or after a Latin brand name ("NHxnwk"
        for "NH투자"): the typed keys stay Latin as long as some entry begins with them."""
        if len(converted) < 2:
            return
        self._prefix(found, converted, "qwerty")
        if is_chosung_query(converted):
            self._chosung(found, converted, "qwerty")
        for kept in range(1, len(typed)):
            start, end = self._by_keys.span(typed[:kept])
            if start == end or typed[kept - 1] == converted[kept - 1]:
                break
            if found.wanted > 0 and typed[kept] != converted[kept]:
                self._prefix(found, typed[:kept] + converted[kept:], "qwerty")

    def _typos(self, found: _Collector, typed: str) -> None:
        edits = allowed_edits(len(typed))
        if not edits or len(typed) > MAX_TYPO_KEYS:
            return
        best: dict[int, _Hit] = {}
        table = self._by_keys
        for fuzzy in fuzzy_prefix_ranges(table.keys, typed, edits):
            for row in table.best_in(fuzzy.start, fuzzy.end, found.wanted, found.hits):
                score = match_score("typo", self._score(row.entry), fuzzy.edits)
                current = best.get(row.entry)
                if current is None or score > current.score:
                    end = self._keys[row.entry].key_chars[fuzzy.depth - 1] + 1
                    best[row.entry] = _Hit(score, "typo", 0, end)
        ranked = sorted(best.items(), key=lambda item: -item[1].score)
        for entry, hit in ranked[: found.wanted]:
            found.add(entry, hit)

    def _infix(self, found: _Collector, typed: str, chosung_query: bool) -> None:
        if len(typed) < 2:
            return
        for row in self._by_word_keys.best(typed, found.wanted, found.hits):
            chars = self._keys[row.entry].key_chars
            start, end = chars[row.offset], chars[row.offset + len(typed) - 1] + 1
            found.add(
                row.entry, _Hit(match_score("infix", self._score(row.entry)), "infix", start, end)
            )
        if chosung_query:
            for row in self._by_word_chosung.best(typed, found.wanted, found.hits):
                chars = self._keys[row.entry].chosung_chars
                start, end = chars[row.offset], chars[row.offset + len(typed) - 1] + 1
                found.add(
                    row.entry,
                    _Hit(match_score("infix", self._score(row.entry)), "infix", start, end),
                )
