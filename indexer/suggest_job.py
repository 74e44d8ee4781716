"""The ``refresh-suggestions`` job: what suggestions rank by (``chatda.feedback.popularity``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from chatda.feedback.popularity import PopularityStore
from chatda.settings import Settings

JOB = "refresh-suggestions"


def refresh_suggestions(settings: Settings, engine: Engine) -> str:
    report = PopularityStore(engine).refresh(
        min_searches=settings.suggest_min_query_searches,
        max_queries=settings.suggest_max_queries,
        half_life_days=settings.suggest_half_life_days,
        now=datetime.now(UTC),
    )
    return report.summary()
