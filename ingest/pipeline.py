"""The content steps of ingest: normalize → chunk (title carried) → BM25 terms → embeddings.

``prepare`` works on one article, so anything it raises belongs to that article alone and the
worker can dead-letter it without touching the rest of the batch. ``embed`` takes the chunks
of a whole poll batch at once: the encoder sorts them by length and fills full batches, which
is where the throughput comes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chatda.articles.message import MAX_TITLE_CHARS, ArticleMessage
from chatda.models.encoder import Encoder
from chatda.text.chunker import chunk
from chatda.text.morphemes import Morphemes
from chatda.text.normalize import normalize_document, normalize_query


@dataclass(frozen=True, slots=True)
class PreparedChunk:
    n: int
    text: str
    embed_text: str
    bm25_text: str


@dataclass(frozen=True, slots=True)
class PreparedArticle:
    """Everything the rows of one upsert need, computed while the article is on its own.

    The epochs are here rather than read off the message when the rows are built, because
    row building runs for the whole batch after embedding, where a failure would be the
    batch's instead of the article's.
    """

    message: ArticleMessage
    title: str
    chunks: tuple[PreparedChunk, ...]
    published_epoch: int
    updated_epoch: int


class Pipeline:
    """Turns validated messages into chunk texts, BM25 input and vectors.

    ``encoder`` may be replaced between batches: the worker follows the model of the
    collection it writes to.
    """

    def __init__(
        self,
        encoder: Encoder,
        morphemes: Morphemes,
        max_tokens: int,
        overlap_sentences: int,
        max_text_chars: int,
    ) -> None:
        self.encoder = encoder
        self.morphemes = morphemes
        self.max_tokens = max_tokens
        self.overlap_sentences = overlap_sentences
        self.max_text_chars = max_text_chars

    def _count_tokens(self, text: str) -> int:
        return self.encoder.count_tokens(text, "passage")

    def prepare(self, message: ArticleMessage) -> PreparedArticle:
        """Chunks of one upsert, each with the text to embed and its Kiwi morphemes.

        The BM25 terms come from the embed text (title + chunk), so a title word finds every
        chunk of its article lexically just as it does semantically.
        """
        title = normalize_query(message.title or "", MAX_TITLE_CHARS).text
        body = normalize_document(message.body or "", self.max_text_chars).text
        pieces = chunk(title, body, self._count_tokens, self.max_tokens, self.overlap_sentences)
        terms = self.morphemes.terms_batch([piece.embed_text for piece in pieces])
        chunks = tuple(
            PreparedChunk(piece.n, piece.text, piece.embed_text, " ".join(words))
            for piece, words in zip(pieces, terms, strict=True)
        )
        return PreparedArticle(
            message, title, chunks, message.published_epoch, message.updated_epoch
        )

    def embed(self, articles: Sequence[PreparedArticle]) -> np.ndarray:
        """Passage vectors of every chunk of ``articles``, in article then chunk order."""
        texts = [c.embed_text for article in articles for c in article.chunks]
        return self.encoder.encode(texts, "passage")
