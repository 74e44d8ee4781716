"""Highlight spans for a matched stretch of an entry's text."""


def highlight(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """`(start, end)` runs of non-space characters within `text[start:end]`.

    Matching ignores spaces, so the matched stretch can cross them; bolding the spaces too
    would look like a rendering glitch.
    """
    spans: list[tuple[int, int]] = []
    run = None
    for index in range(start, end):
        if text[index].isspace():
            if run is not None:
                spans.append((run, index))
                run = None
        elif run is None:
            run = index
    if run is not None:
        spans.append((run, end))
    return spans
