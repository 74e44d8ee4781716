"""Feedback in the SQL store: idempotent writes, and the clicks retraining and calibration read.

Writes skip event ids already stored (``ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL), so
at-least-once delivery from Kafka, a consumer restart, or a Kafka-then-SQL fallback in the API
never counts an event twice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import ColumnElement, Engine, Insert, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from chatda.db.tables import search_events
from chatda.feedback.events import FeedbackRecord


def _known_clicks(
    kind: str, clicked: Collection[str] | None = None
) -> tuple[ColumnElement[bool], ...]:
    """Clicks a learner can use: on a ``kind`` of result (those that said so, and those that
    said nothing: clients before the ``kind`` field, whose id may name either), with the query
    text known, and on one of the ids ``clicked`` (``None``: on any)."""
    column = search_events.c.clicked_kind
    ids = search_events.c.clicked_id
    return (
        search_events.c.type == "click",
        search_events.c.query.is_not(None),
        ids.is_not(None) if clicked is None else ids.in_(sorted(clicked)),
        or_(column.is_(None), column == kind),
    )


def _insert_ignoring_duplicates(dialect: str) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(search_events).on_conflict_do_nothing(index_elements=["event_id"])
    if dialect == "sqlite":
        return sqlite.insert(search_events).on_conflict_do_nothing(index_elements=["event_id"])
    raise ValueError(f"feedback store supports sqlite and postgresql, not {dialect}")


class FeedbackStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = _insert_ignoring_duplicates(engine.dialect.name)

    def save(self, records: Sequence[FeedbackRecord]) -> int:
        """Store the records not stored yet; returns how many were new."""
        if not records:
            return 0
        stored = 0
        with self.engine.begin() as conn:
            for record in records:
                stored += conn.execute(self._insert.values(**record.row())).rowcount
        return stored

    def click_pairs(self, limit: int) -> list[tuple[str, str]]:
        """Distinct ``(query, clicked id)`` of clicks whose query text is known, most clicked
        first: the query → document pairs retraining learns from."""
        clicks = func.count()
        statement = (
            select(search_events.c.query, search_events.c.clicked_id, clicks)
            .where(*_known_clicks("article"))
            .group_by(search_events.c.query, search_events.c.clicked_id)
            .order_by(clicks.desc(), search_events.c.query)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(row[0], row[1]) for row in conn.execute(statement)]

    def click_mark(self) -> int:
        """The row id of the newest stored click (0: none), where ``clicks_since`` counts
        from: rows only ever get larger ids."""
        statement = select(func.max(search_events.c.id)).where(search_events.c.type == "click")
        with self.engine.connect() as conn:
            return int(conn.execute(statement).scalar() or 0)

    def clicks_since(self, mark: int, clicked: Collection[str]) -> int:
        """Clicks on one of the ids ``clicked``, with a known query, stored after ``mark``."""
        if not clicked:
            return 0
        statement = select(func.count()).where(
            search_events.c.id > mark, *_known_clicks("intent", clicked)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(statement).scalar() or 0)

    def recent_clicks(self, clicked: Collection[str], limit: int) -> list[tuple[str, str]]:
        """The ``limit`` most recent clicks on one of the ids ``clicked`` whose query text is
        known, newest first, as ``(query, clicked id)``: what the intent calibration learns
        from (``chatda.catalog.calibration_fit``)."""
        if not clicked or limit <= 0:
            return []
        statement = (
            select(search_events.c.query, search_events.c.clicked_id)
            .where(*_known_clicks("intent", clicked))
            .order_by(search_events.c.received_at.desc(), search_events.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(row[0], row[1]) for row in conn.execute(statement)]
