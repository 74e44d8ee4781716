"""The indexer's jobs by name: each runs on a schedule and by hand (`chatda jobs run NAME`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from chatda.settings import Settings
from indexer.feedback_job import aggregate_feedback
from indexer.reindex_job import JOB as REINDEX
from indexer.reindex_job import reindex_job
from indexer.retrain_job import JOB as RETRAIN
from indexer.retrain_job import retrain
from indexer.suggest_job import JOB as REFRESH_SUGGESTIONS
from indexer.suggest_job import refresh_suggestions


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    run: Callable[[Settings, Engine], str]


JOBS: dict[str, Job] = {
    job.name: job
    for job in [
        Job(
            "aggregate-feedback",
            "click-through per shown item from search events (threshold review, retraining)",
            lambda _settings, engine: aggregate_feedback(engine),
        ),
        Job(
            REFRESH_SUGGESTIONS,
            "popular queries and clicked items, time-decayed, for suggestion ranking",
            refresh_suggestions,
        ),
        Job(
            REINDEX,
            "blue-green re-index when the serving model is not the one the index was built with",
            reindex_job,
        ),
        Job(
            RETRAIN,
            "fine-tune on click pairs; serve the new model only if its retrieval is not worse",
            retrain,
        ),
    ]
}
