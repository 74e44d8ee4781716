"""How a refused article or event is told back, the same at each of its doors: the article
route's 422, a dead-letter record's reason (articles and feedback events) and the CLI's
line-by-line import report. (The API's other 422s word FastAPI's request errors in
``query.errors``.)"""

from __future__ import annotations

from pydantic import ValidationError


def error_summary(exc: ValidationError) -> str:
    """One line naming every failing field, e.g. ``tags.0: must be at most 64 UTF-8 bytes``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts)
