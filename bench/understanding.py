"""How often search's query understanding converts what it should, and what it should not.

Run: .venv/bin/python bench/understanding.py [report | tune | words] [--data ../shared/data]

report (default): false conversions and recall, as ratios (BENCHMARKS.md § 9):
  * ordinary Korean: question_pair validation (both questions) and ChatbotData questions;
  * ordinary English: bench/understanding_english.txt (hand-written app queries, brands, code);
    the same again without the English word lists, to show what they add;
  * QWERTY-typed Korean: each of those Korean queries typed with the Latin layout on (queries
    with Latin letters of their own are left out: their Latin part has no Korean keys);
  * 초성: the initials of every intent name the demo catalog offers to suggest.
  The product vocabulary is the demo catalog's suggest entries and the demo article titles.
tune: the Kiwi score per syllable of question_pair *train* queries typed on QWERTY against
  web2 words whose keys compose into Hangul (needs `pip install english-words`), per threshold;
  MIN_SCORE_PER_SYLLABLE in chatda/search/understanding.py was chosen from it.
words: regenerate chatda/search/english_lookalikes.txt from web2 (needs english-words).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections.abc import Iterable
from pathlib import Path

from chatda.catalog.file_format import parse_catalog
from chatda.catalog.models import Area
from chatda.demo import articles_path, catalog_path
from chatda.search.understanding import (
    MIN_SCORE_PER_SYLLABLE,
    english_lookalikes,
    korean_score,
    syllable_count,
    understand,
)
from chatda.suggest.entries import SuggestEntry
from chatda.suggest.index import SuggestionIndex
from chatda.text.jamo import chosung, is_chosung_query
from chatda.text.keyboard import hangul_to_qwerty, qwerty_to_hangul
from chatda.text.morphemes import default_morphemes
from chatda.text.normalize import normalize_query

ROOT = Path(__file__).resolve().parent.parent
ENGLISH_QUERIES = Path(__file__).with_name("understanding_english.txt")
LOOKALIKES = ROOT / "chatda" / "search" / "english_lookalikes.txt"
MAX_HINT_CHARS = 30  # as the suggest service's default
_LATIN = re.compile("[A-Za-z]")
CHAT_INITIALS = (
    "ㅋㅋ", "ㅋㅋㅋ", "ㅎㅎ", "ㅇㅇ", "ㄱㄱ", "ㄴㄴ", "ㅇㅋ", "ㄱㅅ", "ㄱㅅㄱㅅ", "ㅈㅅ",
    "ㅊㅋ", "ㅂㅂ", "ㅃㅃ", "ㅎㅇ", "ㅅㄱ", "ㄷㄷ", "ㅁㅊ", "ㅇㅈ", "ㄹㅇ", "ㅈㄱㄴ",
    "ㄱㄷ", "ㅁㄹ", "ㅇㄱ", "ㅉㅉ", "ㅎㄷㄷ", "ㅇㅎ", "ㄴㄱ", "ㅈㅂ", "ㅊㅊ", "ㄱㅊ",
)  # fmt: skip
"""초성 that Korean users type as chat shorthand (ㅋㅋ laughter, ㄱㅅ 감사, ㅅㄱ 수고, …),
written for this bench; expanding one is not always wrong (ㅅㄱ → 송금 is what issue #26 asks),
so they are reported apart, with what each became."""
_HANGUL = re.compile("[가-힣]")


def vocabulary() -> SuggestionIndex:
    return SuggestionIndex(vocabulary_entries())


def vocabulary_entries() -> list[SuggestEntry]:
    """The demo catalog's suggest entries (names, short hints) and the demo article titles."""
    entries: list[SuggestEntry] = []
    for intent in parse_catalog(catalog_path().read_text(encoding="utf-8")):
        if intent.open and Area.SUGGEST in intent.areas:
            entries.append(SuggestEntry(intent.name, "intent", str(intent.id)))
            entries += [
                SuggestEntry(h, "hint", str(intent.id))
                for h in intent.hints
                if len(h) <= MAX_HINT_CHARS
            ]
    with articles_path().open(encoding="utf-8") as lines:
        for line in lines:
            article = json.loads(line)
            entries.append(SuggestEntry(article["title"], "title", article["post_id"]))
    return entries


def korean_queries(data: Path, split: str) -> list[str]:
    """Query-side Korean text: question_pair ``split`` (both questions), plus ChatbotData
    questions for the report split."""
    texts: list[str] = []
    with (data / "question_pair" / f"{split}.txt").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            texts += [row["question1"], row["question2"]]
    if split == "validation":
        with (data / "korean_chatbot_data" / "ChatbotData.csv").open(encoding="utf-8") as f:
            texts += [row["Q"] for row in csv.DictReader(f)]
    normalized = (normalize_query(t).text for t in texts)
    return sorted({t for t in normalized if t})


def shared_initials(names: list[str]) -> int:
    """Names whose initials another vocabulary text has too: where picking one is tested."""
    texts = [e.text for e in vocabulary_entries()]
    keys = ["".join(chosung(t).split()) for t in texts]
    return sum(keys.count("".join(chosung(name).split())) > 1 for name in names)


def rate(hits: int, total: int) -> str:
    return f"{hits / total:.3f} ({hits}/{total})" if total else "n/a"


def report(data: Path) -> None:
    vocab = vocabulary()
    kiwi = default_morphemes().kiwi
    korean = korean_queries(data, "validation")
    english = [
        normalize_query(line).text
        for line in ENGLISH_QUERIES.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def converted(queries: Iterable[str], words: frozenset[str] | None = None) -> list[str]:
        return [q for q in queries if understand(q, vocab, kiwi, english=words) is not None]

    korean_false = converted(korean)
    english_false = converted(english)
    english_bare = converted(english, frozenset())
    typed = [q for q in korean if _HANGUL.search(q) and not _LATIN.search(q)]
    exact = any_conversion = 0
    for query in typed:
        found = understand(hangul_to_qwerty(query), vocab, kiwi)
        any_conversion += found is not None
        exact += found is not None and found.text == query
    names = sorted(
        {
            i.name
            for i in parse_catalog(catalog_path().read_text(encoding="utf-8"))
            if i.open
            and Area.SUGGEST in i.areas
            and len(i.name) > 1
            and is_chosung_query(chosung(i.name))
        }
    )
    initials_exact = sum(
        (found := understand(chosung(name), vocab, kiwi)) is not None and found.text == name
        for name in names
    )
    print("| queries | what | rate |")
    print("|---|---|---|")
    print(f"| ordinary Korean | converted (false) | {rate(len(korean_false), len(korean))} |")
    print(f"| ordinary English | converted (false) | {rate(len(english_false), len(english))} |")
    print(
        f"| ordinary English, no word lists | converted (false) | "
        f"{rate(len(english_bare), len(english))} |"
    )
    print(f"| Korean typed on QWERTY | converted back exactly | {rate(exact, len(typed))} |")
    print(f"| Korean typed on QWERTY | converted at all | {rate(any_conversion, len(typed))} |")
    print(f"| 초성 of catalog names | expanded to the name | {rate(initials_exact, len(names))} |")
    chat = {q: understand(q, vocab, kiwi) for q in CHAT_INITIALS}
    expanded = {q: found.text for q, found in chat.items() if found is not None}
    print(f"| 초성 chat shorthand | expanded | {rate(len(expanded), len(chat))} |")
    jamo_only = sum(not _HANGUL.search(q) for q in korean)
    print()
    print(f"ordinary Korean without a Hangul syllable (jamo only, Latin, digits): {jamo_only}")
    print(f"catalog names sharing their 초성 with another entry: {shared_initials(names)}")
    print()
    print("chat shorthand expanded:", expanded)
    print("false conversions:", [(q, understand(q, vocab, kiwi)) for q in korean_false][:20])
    print("english:", english_false, "without lists:", english_bare)


def tune(data: Path) -> None:
    """Kiwi's score alone (no word lists, no vocabulary) on QWERTY-typed Korean vs web2."""
    from english_words import get_english_words_set

    kiwi = default_morphemes().kiwi
    queries = [" ".join(re.findall("[가-힣]+", q)) for q in korean_queries(data, "train")]
    queries = [q for q in queries if q]
    words = sorted({word for q in queries for word in q.split() if len(word) >= 2})
    web2 = get_english_words_set(["web2"], lower=True, alpha=True)
    lookalikes = sorted(
        hangul
        for word in web2
        if (count := syllable_count(hangul := qwerty_to_hangul(word))) is not None and count >= 2
    )
    scored = {
        name: [korean_score(text, kiwi) for text in texts]
        for name, texts in (("queries", queries), ("words", words), ("web2", lookalikes))
    }
    print(
        f"question_pair train: {len(queries)} queries, {len(words)} words; "
        f"{len(lookalikes)} web2 words that compose"
    )
    print("| min score per syllable | Korean words kept | Korean queries kept | web2 passed |")
    print("|---|---|---|---|")
    for threshold in (-8.0, -9.0, -9.5, -10.0, -10.5, -11.0, -12.0, -13.0):
        cells = [
            rate(sum(s is not None and s >= threshold for s in scores), len(scores))
            for scores in (scored["words"], scored["queries"], scored["web2"])
        ]
        mark = " (chosen)" if threshold == MIN_SCORE_PER_SYLLABLE else ""
        print(f"| {threshold}{mark} | " + " | ".join(cells) + " |")


def words() -> None:
    from english_words import get_english_words_set

    web2 = get_english_words_set(["web2"], lower=True, alpha=True)
    found = sorted(w for w in web2 if syllable_count(qwerty_to_hangul(w)) is not None)
    header = (
        "# English words whose keys, read on the Korean 2-set layout, compose into complete\n"
        "# Hangul syllables; search never reads them as QWERTY-typed Korean.\n"
        "# Source: web2 (Webster's Second International Dictionary, 1934; public domain), as\n"
        "# shipped by the english-words package (MIT). Generated by\n"
        "# `python bench/understanding.py words`; do not edit by hand.\n"
    )
    LOOKALIKES.write_text(header + "\n".join(found) + "\n", encoding="utf-8")
    english_lookalikes.cache_clear()
    print(f"{len(found)} words → {LOOKALIKES}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="report", choices=["report", "tune", "words"])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    if args.command == "words":
        words()
    elif args.command == "tune":
        tune(args.data)
    else:
        report(args.data)


if __name__ == "__main__":
    main()
