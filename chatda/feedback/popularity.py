"""Suggestion popularity: feedback events → a small table every API process reads.

Counting over the whole event log is a job's work, done once (``refresh-suggestions``), not a
GROUP BY over ``search_events`` in every API replica every few minutes. Each search counts
once per query text, and weighs ``0.5 ** (age / half_life)``, so yesterday's burst outranks
last year's habit; the privacy floor is on plain distinct searches, so a query becomes a
suggestion only once ``min_searches`` separate searches asked it. Clicks on articles and
intents give those entries popularity too (same decay), so a title people pick ranks above an
equally good match nobody picks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, delete, func, insert, select

from chatda.db.tables import search_events, suggest_popularity
from chatda.db.timestamps import as_utc

QUERY, ITEM = "query", "item"
_MAX_KEY = 512


@dataclass(frozen=True)
class Popularity:
    """What the suggestion index reads: popular queries, best first, and clicked items."""

    queries: list[tuple[str, float]] = field(default_factory=list)
    items: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RefreshReport:
    queries: int
    items: int
    searches: int
    clicks: int

    def summary(self) -> str:
        return (
            f"{self.queries} popular queries from {self.searches} searches, "
            f"{self.items} clicked items from {self.clicks} clicks"
        )


class PopularityStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def refresh(
        self, min_searches: int, max_queries: int, half_life_days: float, now: datetime
    ) -> RefreshReport:
        """Recompute the table from the events and replace it in one transaction."""

        def weight(moment: datetime) -> float:
            age_days = max((now - as_utc(moment)).total_seconds(), 0.0) / 86400
            return float(0.5 ** (age_days / half_life_days))

        searches: Counter[str] = Counter()
        query_score: defaultdict[str, float] = defaultdict(float)
        item_clicks: Counter[str] = Counter()
        item_score: defaultdict[str, float] = defaultdict(float)
        per_search = (
            select(search_events.c.query, func.min(search_events.c.received_at))
            .where(search_events.c.query.is_not(None))
            .group_by(search_events.c.query, search_events.c.query_id)
        )
        clicks = select(search_events.c.clicked_id, search_events.c.received_at).where(
            search_events.c.type == "click", search_events.c.clicked_id.is_not(None)
        )
        with self.engine.connect() as conn:
            for query, first_seen in conn.execute(per_search):
                if len(query) <= _MAX_KEY:
                    searches[query] += 1
                    query_score[query] += weight(first_seen)
            for clicked, received in conn.execute(clicks):
                item_clicks[clicked] += 1
                item_score[clicked] += weight(received)
        popular = sorted(
            (q for q, n in searches.items() if n >= min_searches),
            key=lambda q: (-query_score[q], q),
        )[:max_queries]
        rows = [
            {"kind": QUERY, "key": q, "popularity": query_score[q], "searches": searches[q]}
            for q in popular
        ] + [
            {"kind": ITEM, "key": i, "popularity": item_score[i], "searches": item_clicks[i]}
            for i in sorted(item_clicks)
        ]
        with self.engine.begin() as conn:
            conn.execute(delete(suggest_popularity))
            if rows:
                conn.execute(insert(suggest_popularity), [r | {"updated_at": now} for r in rows])
        return RefreshReport(
            queries=len(popular),
            items=len(item_clicks),
            searches=sum(searches.values()),
            clicks=sum(item_clicks.values()),
        )

    def load(self, max_queries: int) -> Popularity:
        queries = (
            select(suggest_popularity.c.key, suggest_popularity.c.popularity)
            .where(suggest_popularity.c.kind == QUERY)
            .order_by(suggest_popularity.c.popularity.desc(), suggest_popularity.c.key)
            .limit(max_queries)
        )
        items = select(suggest_popularity.c.key, suggest_popularity.c.popularity).where(
            suggest_popularity.c.kind == ITEM
        )
        with self.engine.connect() as conn:
            return Popularity(
                queries=[(key, float(score)) for key, score in conn.execute(queries)],
                items={key: float(score) for key, score in conn.execute(items)},
            )
