"""The indexer's jobs by name: each runs on a schedule and by hand (`chatda jobs run NAME`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from chatda.settings import Settings
from indexer.feedback_job import aggregate_feedback
from indexer.outbox_job import JOB as RECONCILE_OUTBOX
from indexer.outbox_job import reconcile_outbox_job
from indexer.reindex_job import JOB as REINDEX
from indexer.reindex_job import reindex_job
from indexer.retrain_job import JOB as RETRAIN
from indexer.retrain_job import retrain
from indexer.suggest_job import JOB as REFRESH_SUGGESTIONS
from indexer.suggest_job import refresh_suggestions


@dataclass(frozen=True)
class Job:
    """``quiet``: a frequent job (every few seconds) whose scheduled runs leave a history row
    only when they report a detail or fail, so the history keeps what an operator needs
    instead of thousands of idle runs a day. It must be safe to overlap itself, since the
    run guard is part of that history (the outbox reconciler claims rows one by one)."""

    name: str
    description: str
    run: Callable[[Settings, Engine], str]
    quiet: bool = False


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
        Job(
            RECONCILE_OUTBOX,
            "confirm accepted articles in the index; re-send those a broker lost",
            reconcile_outbox_job,
            quiet=True,
        ),
    ]
}
