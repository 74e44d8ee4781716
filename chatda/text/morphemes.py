"""BM25 terms: the content morphemes of Korean text, produced by Kiwi.

Korean glues particles and endings onto words (송금했어요, 송금 내역을), so whitespace tokens
never match between a query and a document; the stems do. Documents and queries go through the
same `terms` so both sides of BM25 agree.

Kept: common/proper/dependent nouns (NNG, NNP, NNB), numerals (NR), verb and adjective stems
(VV, VA, irregular variants included, as the stem form: 보냈다 → 보내), roots (XR), Latin words
(SL, lower-cased), Hanja (SH) and numbers (SN). Pronouns (NP: 나, 이것, 여기) are left out: they
are as frequent as particles and say nothing about what is being searched for.
"""

import threading
from collections.abc import Iterable

from kiwipiepy import Kiwi, Token

from chatda.text.normalize import clean

_CONTENT_TAGS = frozenset({"NNG", "NNP", "NNB", "NR", "VV", "VA", "XR", "SL", "SH", "SN"})
# High enough that a registered product name wins over any split Kiwi would prefer.
_USER_WORD_SCORE = 10.0


def _content_terms(tokens: Iterable[Token]) -> list[str]:
    out: list[str] = []
    for token in tokens:
        tag = token.tag.split("-", 1)[0]
        if tag not in _CONTENT_TAGS:
            continue
        form = token.form
        if tag == "SL":
            if not any(char.isalnum() for char in form):
                continue
            form = form.lower()
        # A multi-word user entry comes back as one form with spaces; the BM25 field's analyzer
        # splits on spaces, so emit its words as separate terms.
        out.extend(form.split())
    return out


def _build_kiwi(user_words: frozenset[str], num_workers: int | None) -> Kiwi:
    kiwi = Kiwi(num_workers=num_workers)
    for word in sorted(user_words):
        kiwi.add_user_word(word, "NNP", _USER_WORD_SCORE)
    # Kiwi rebuilds its dictionary lazily on the first analysis; do it now, before publishing.
    kiwi.tokenize("준비")
    return kiwi


class Morphemes:
    """One Kiwi analyzer shared by every thread, with the app's product names added.

    kiwipiepy documents `Kiwi` analysis as thread-safe (since 0.22), but not a dictionary that
    changes under a running analysis. So adding words builds a fresh Kiwi and swaps it in: readers
    take no lock, and only the (rare, a few seconds) rebuild is serialized.
    """

    def __init__(self, user_words: Iterable[str] = (), num_workers: int | None = None) -> None:
        self._num_workers = num_workers
        self._rebuild = threading.Lock()
        self._user_words = frozenset(_clean_words(user_words))
        self._kiwi = _build_kiwi(self._user_words, num_workers)

    @property
    def kiwi(self) -> Kiwi:
        """The current analyzer, for other Kiwi-based steps such as sentence splitting."""
        return self._kiwi

    def add_user_words(self, words: Iterable[str]) -> None:
        """Keep these words whole (e.g. "카카오뱅크", "토스페이") as proper nouns."""
        with self._rebuild:
            merged = self._user_words | _clean_words(words)
            if merged == self._user_words:
                return
            kiwi = _build_kiwi(merged, self._num_workers)
            self._kiwi, self._user_words = kiwi, merged

    def terms(self, text: str) -> list[str]:
        """Content morphemes of one text, in order, repeats kept (BM25 counts them)."""
        return _content_terms(self._kiwi.tokenize(clean(text)))

    def terms_batch(self, texts: Iterable[str]) -> list[list[str]]:
        """`terms` for many texts at once, spread over Kiwi's own worker threads."""
        cleaned = [clean(text) for text in texts]
        if not cleaned:
            return []
        return [_content_terms(tokens) for tokens in self._kiwi.tokenize(cleaned)]

    def joined(self, text: str) -> str:
        """Terms joined by single spaces: the input of the BM25 field's `standard` analyzer."""
        return " ".join(self.terms(text))


def _clean_words(words: Iterable[str]) -> frozenset[str]:
    return frozenset(" ".join(clean(word).split()) for word in words) - {""}


_default: Morphemes | None = None
_default_lock = threading.Lock()


def default_morphemes() -> Morphemes:
    """The process-wide analyzer; loading Kiwi takes about a second, so it is built once."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Morphemes()
        return _default


def terms(text: str) -> list[str]:
    """`Morphemes.terms` with the process-wide analyzer."""
    return default_morphemes().terms(text)


def joined(text: str) -> str:
    """`Morphemes.joined` with the process-wide analyzer."""
    return default_morphemes().joined(text)
