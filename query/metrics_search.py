"""What each search answer was made of: per source status and time, partial answers, intents.

Recorded from the ``SearchOutcome`` the route turns into its answer, so the numbers are the
ones the client saw in ``sources`` and ``partial``. Sources and statuses are closed sets
(``SourceName``, ``Status``) and profiles come from configuration: every label is bounded.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from chatda.search.engine import SearchOutcome

SEARCHES = Counter(
    "chatda_search_answers_total",
    "Search answers, by profile and whether partial",
    ["profile", "partial"],
)
SOURCE_STATUS = Counter(
    "chatda_search_source_total",
    "Sources asked per search answer, by source and status (ok, skipped, timeout, error)",
    ["source", "status"],
)
SOURCE_SECONDS = Histogram(
    "chatda_search_source_seconds",
    "From the request's start to when a source finished or was dropped, by source",
    ["source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5),
)
INTENTS_PASSED = Histogram(
    "chatda_search_intents_passed",
    "Intents that passed the threshold and were returned, per search answer",
    buckets=(0, 1, 2, 3, 5, 10),
)
SEARCH_SECONDS = Histogram(
    "chatda_search_seconds",
    "Engine time of one search answer (fan-out, fusion, highlights), by profile",
    ["profile"],
    buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5),
)


def record_search(outcome: SearchOutcome) -> None:
    """Count one answer; called once per answered search, by either method."""
    SEARCHES.labels(outcome.profile, "true" if outcome.partial else "false").inc()
    SEARCH_SECONDS.labels(outcome.profile).observe(outcome.took_ms / 1000)
    for source, report in outcome.sources.items():
        SOURCE_STATUS.labels(source.value, report.status).inc()
        SOURCE_SECONDS.labels(source.value).observe(report.ms / 1000)
    INTENTS_PASSED.observe(len(outcome.intents))
