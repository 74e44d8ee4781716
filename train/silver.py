"""Silver (query, passage) pairs from unlabeled text, for retrieval tuning without labels.

Four sources, each a stand-in for a query a user would type:
- title → body chunk: the document's own name is a short, topical query;
- a question-like sentence → the chunk it came from, with that sentence removed (the inverse
  cloze task), so the model must match meaning rather than copy words;
- an entailed NLI hypothesis → its premise: a shorter restatement of one fact finds the text
  that states it (KLUE's premises are Wikipedia, news and policy text, the closest we have to
  an app's articles);
- an everyday chat question → its reply (korean_chatbot_data): query-style wording.
BM25 top-1 positives (a small share) are built by ``retrieval`` from the same collection.
KorQuAD is never used here: it is the evaluation set.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from train.data import Document, Triplet

Pair = tuple[str, str]
_QUESTION_END = re.compile(r"(\?|까\.?|나요\.?|니\.?|는가\.?|인가\.?)$")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Chunk:
    title: str
    sentences: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def chunk_documents(
    docs: Sequence[Document], split: Callable[[str], list[str]], max_chars: int
) -> list[Chunk]:
    """Pack whole sentences into chunks of at most ``max_chars`` (one sentence may exceed it)."""
    chunks: list[Chunk] = []
    for doc in docs:
        body = _SPACES.sub(" ", doc.body).strip()
        sentences = [s.strip() for s in split(body) if s.strip()]
        current: list[str] = []
        for sentence in sentences:
            if current and len(" ".join([*current, sentence])) > max_chars:
                chunks.append(Chunk(doc.title, current))
                current = []
            current.append(sentence)
        if current:
            chunks.append(Chunk(doc.title, current))
    return chunks


def title_pairs(chunks: Sequence[Chunk], per_title: int, rng: random.Random) -> list[Pair]:
    """Up to ``per_title`` (title, chunk) pairs per document: one title has many chunks."""
    by_title: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_title.setdefault(c.title, []).append(c)
    pairs: list[Pair] = []
    for title, group in by_title.items():
        for c in rng.sample(group, min(per_title, len(group))):
            pairs.append((title, c.text))
    return pairs


def cloze_pairs(chunks: Sequence[Chunk], per_chunk: int, rng: random.Random) -> list[Pair]:
    """Up to ``per_chunk`` sentences of a chunk (question-like ones first) → the rest of it."""
    pairs: list[Pair] = []
    for c in chunks:
        if len(c.sentences) < 3:
            continue
        usable = [i for i, s in enumerate(c.sentences) if 10 <= len(s) <= 200]
        rng.shuffle(usable)
        usable.sort(key=lambda i: not _QUESTION_END.search(c.sentences[i]))
        for pick in usable[:per_chunk]:
            rest = [s for i, s in enumerate(c.sentences) if i != pick]
            pairs.append((c.sentences[pick], " ".join(rest)))
    return pairs


def chat_pairs(pairs: Sequence[Pair], limit: int, rng: random.Random) -> list[Pair]:
    """A seeded sample of chat (question, reply) pairs, duplicates of a question removed."""
    seen: set[str] = set()
    unique = []
    for q, a in pairs:
        if q not in seen:
            seen.add(q)
            unique.append((q, a))
    return rng.sample(unique, min(limit, len(unique)))


def entailment_pairs(triplets: Sequence[Triplet], rng: random.Random) -> list[Pair]:
    """One (entailed hypothesis, premise) pair per premise, seeded: a premise is one passage."""
    by_premise: dict[str, list[str]] = {}
    for t in triplets:
        by_premise.setdefault(t.anchor, []).append(t.positive)
    pairs = [(rng.choice(hypotheses), premise) for premise, hypotheses in by_premise.items()]
    rng.shuffle(pairs)
    return pairs
