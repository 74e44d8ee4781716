"""Aggregate feedback: click-through per shown item, for threshold review and retraining."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, insert, select

from chatda.db.tables import item_stats, search_events


def aggregate_feedback(engine: Engine) -> str:
    impressions: Counter[str] = Counter()
    clicks: Counter[str] = Counter()
    with engine.connect() as conn:
        rows = conn.execute(
            select(search_events.c.type, search_events.c.shown, search_events.c.clicked_id)
        )
        for kind, shown, clicked in rows:
            if kind == "impression" and shown:
                impressions.update(item["id"] for item in shown)
            elif kind == "click" and clicked:
                clicks[clicked] += 1
    now = datetime.now(UTC)
    items = set(impressions) | set(clicks)
    with engine.begin() as conn:
        conn.execute(delete(item_stats))
        for item in sorted(items):
            shown_n = max(impressions[item], clicks[item])
            conn.execute(
                insert(item_stats).values(
                    item_id=item,
                    impressions=shown_n,
                    clicks=clicks[item],
                    ctr=clicks[item] / shown_n if shown_n else 0.0,
                    updated_at=now,
                )
            )
    return (
        f"{len(items)} items, {sum(impressions.values())} impressions, "
        f"{sum(clicks.values())} clicks"
    )
