"""Article bodies cut into embedding-sized chunks on sentence boundaries.

The embedding model sees at most `max_tokens`, so every chunk must fit, measured with the
model's own tokenizer (`count_tokens`) on exactly the string that will be embedded: the title,
a line break, then the chunk. The title goes into every chunk because a chunk from the middle of
an article ("수수료는 면제됩니다") means little without it. Neighbouring chunks share
`overlap_sentences` sentences so a fact split across a boundary is still whole in one of them.
"""

from collections.abc import Callable
from dataclasses import dataclass

from chatda.text.sentences import sentence_spans

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Chunk:
    """`text == body[start:end]`; `embed_text` is what goes to the embedding model."""

    n: int
    text: str
    embed_text: str
    start: int
    end: int


def embed_text(title: str, text: str) -> str:
    """What the model reads for a chunk: the article title, then the chunk (re-index uses it
    to re-embed stored chunks exactly as ingest embedded them)."""
    return f"{title}\n{text}"


class _Budget:
    def __init__(self, title: str, body: str, count_tokens: Callable[[str], int], limit: int):
        self.title = title
        self.body = body
        self.count_tokens = count_tokens
        self.limit = limit

    def embed_text(self, start: int, end: int) -> str:
        return embed_text(self.title, self.body[start:end])

    def fits(self, start: int, end: int) -> bool:
        return self.count_tokens(self.embed_text(start, end)) <= self.limit


def _longest_prefix(text: str, fits: Callable[[str], bool]) -> str:
    """Longest prefix of `text` that fits, by bisection (token counts grow with length)."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(text[:middle]):
            low = middle
        else:
            high = middle - 1
    return text[:low]


def _carried_title(title: str, count_tokens: Callable[[str], int], max_tokens: int) -> str:
    """The title as carried into chunks: cut so it never takes more than half the budget."""
    half = max_tokens // 2
    if count_tokens(f"{title}\n") <= half:
        return title
    return _longest_prefix(title, lambda prefix: count_tokens(f"{prefix}\n") <= half).rstrip()


def _sentences(body: str) -> list[Span]:
    """Sentence spans with whitespace-only spans folded into a neighbour, so none is empty."""
    spans: list[Span] = []
    for start, end in sentence_spans(body):
        if spans and not body[start:end].strip():
            spans[-1] = (spans[-1][0], end)
        elif len(spans) == 1 and not body[slice(*spans[0])].strip():
            spans[0] = (spans[0][0], end)
        else:
            spans.append((start, end))
    return spans


def _split_long(budget: _Budget, start: int, end: int) -> list[Span]:
    """Pieces of a sentence too long for one chunk: cut at the last space that keeps at least
    half of what fits, or mid-word when a single word is over budget."""
    pieces: list[Span] = []
    body = budget.body
    while start < end:
        low, high = start, end
        while low < high:
            middle = (low + high + 1) // 2
            if budget.fits(start, middle):
                low = middle
            else:
                high = middle - 1
        if low == start:
            raise ValueError("max_tokens is too small to hold a single character with the title")
        cut = low
        if low < end:
            for position in range(low, start + (low - start) // 2, -1):
                if body[position - 1].isspace() and budget.fits(start, position):
                    cut = position
                    break
        pieces.append((start, cut))
        start = cut
    return pieces


def _units(budget: _Budget) -> list[Span]:
    units: list[Span] = []
    for start, end in _sentences(budget.body):
        if budget.fits(start, end):
            units.append((start, end))
        else:
            units.extend(_split_long(budget, start, end))
    return units


def _pack(budget: _Budget, units: list[Span], overlap: int) -> list[Span]:
    """Greedy packing; each chunk after the first repeats up to `overlap` trailing units of the
    previous one, fewer if the repeat would leave no room for the first new unit."""
    packed: list[Span] = []
    first = last = 0
    while True:
        while last + 1 < len(units) and budget.fits(units[first][0], units[last + 1][1]):
            last += 1
        packed.append((units[first][0], units[last][1]))
        if last == len(units) - 1:
            return packed
        following = last + 1
        first = max(first + 1, following - overlap)
        while first < following and not budget.fits(units[first][0], units[following][1]):
            first += 1
        last = following


def chunk(
    title: str,
    body: str,
    count_tokens: Callable[[str], int],
    max_tokens: int = 256,
    overlap_sentences: int = 1,
) -> list[Chunk]:
    """Chunks covering all of `body`, each with `count_tokens(embed_text) <= max_tokens`.

    A body with no text still gives one chunk whose `embed_text` is the title alone, so an
    article that is only a title can be found. Offsets are into `body` as given.
    """
    if max_tokens <= 0:
        raise ValueError("max_tokens must be positive")
    if overlap_sentences < 0:
        raise ValueError("overlap_sentences must not be negative")
    if not body.strip():
        carried = _longest_prefix(title, lambda prefix: count_tokens(prefix) <= max_tokens)
        return [Chunk(0, body, carried.rstrip(), 0, len(body))]
    budget = _Budget(
        _carried_title(title, count_tokens, max_tokens), body, count_tokens, max_tokens
    )
    spans = _pack(budget, _units(budget), overlap_sentences)
    return [
        Chunk(n, body[start:end], budget.embed_text(start, end), start, end)
        for n, (start, end) in enumerate(spans)
    ]
