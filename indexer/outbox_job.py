"""The outbox reconciler: confirm accepted articles against Milvus, re-send what went missing.

Milvus is the source of truth for "searchable". A row of the outbox (``chatda.articles.outbox``)
is delivered when the collection the alias serves holds the article at that version or newer
(an upsert), or holds nothing of it at that version or older (a delete); delivered rows are
removed. A row still undelivered ``CHATDA_OUTBOX_GRACE_S`` after its last send is sent again,
the wait doubling with each attempt so a slow backlog is not flooded with copies. Re-sending is
safe because ingest is idempotent: the same post_id and updated_at rewrite the same chunk ids
with the same content (``ingest/sink.py``), and an older version never replaces a newer one
(``ingest/plan.py``). After ``CHATDA_OUTBOX_MAX_ATTEMPTS`` re-sends a row is marked failed
(logged, counted) instead of looping: a record ingest dead-letters can never be confirmed.

It runs as the scheduler job ``reconcile-outbox`` (every few seconds) and once when ``chatda
up`` starts, with no grace: the embedded broker has just lost everything it held.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter
from pymilvus import MilvusClient
from sqlalchemy import Engine

from chatda.articles.outbox import PENDING, Outbox, OutboxRow
from chatda.articles.publisher import Publisher
from chatda.settings import Settings
from chatda.storage.articles_schema import alias_target, create_articles_collection
from chatda.storage.indexed_posts import indexed_posts
from chatda.storage.milvus_client import connect

log = logging.getLogger(__name__)

JOB = "reconcile-outbox"

CONFIRMED = Counter("chatda_outbox_confirmed_total", "accepted articles confirmed in the index")
RESENT = Counter("chatda_outbox_resent_total", "accepted articles re-sent to Kafka")
FAILED = Counter(
    "chatda_outbox_failed_total", "accepted articles given up on after the last re-send"
)

# post_id -> the newest updated_at (epoch seconds) the serving collection holds
IndexedVersions = Callable[[list[str]], dict[str, int]]


@dataclass(frozen=True)
class Reconciled:
    confirmed: int = 0
    resent: int = 0
    failed: int = 0
    waiting: int = 0

    def detail(self) -> str:
        """Empty when the run only confirmed or waited: the normal case, not history."""
        if not (self.resent or self.failed):
            return ""
        return (
            f"confirmed {self.confirmed}, re-sent {self.resent}, failed {self.failed}, "
            f"waiting {self.waiting}"
        )


def delivered(row: OutboxRow, indexed: int | None) -> bool:
    """Whether the index reflects ``row``: an upsert at its version or newer is there; a
    delete left nothing at its version or older (a newer upsert supersedes it)."""
    if row.op == "delete":
        return indexed is None or indexed > row.updated_epoch
    return indexed is not None and indexed >= row.updated_epoch


def overdue(row: OutboxRow, now: datetime, grace_s: float) -> bool:
    """Sent long enough ago to count as lost: the grace doubles with every attempt."""
    return now - row.sent_at >= timedelta(seconds=grace_s * 2**row.attempts)


def reconcile(
    outbox: Outbox,
    indexed_versions: IndexedVersions,
    connect_publisher: Callable[[], Publisher],
    *,
    grace_s: float,
    max_attempts: int,
    now: datetime | None = None,
) -> Reconciled:
    """One pass over the unconfirmed rows: confirm, mark failed, re-send."""
    rows = outbox.unconfirmed()
    if not rows:
        return Reconciled()
    now = now or datetime.now(UTC)
    versions = indexed_versions([row.post_id for row in rows])
    done = [row for row in rows if delivered(row, versions.get(row.post_id))]
    confirmed = outbox.confirm(done)
    CONFIRMED.inc(confirmed)
    done_ids = {row.post_id for row in done}
    late = [
        row
        for row in rows
        if row.status == PENDING and row.post_id not in done_ids and overdue(row, now, grace_s)
    ]
    failed = sum(_give_up(outbox, row) for row in late if row.attempts >= max_attempts)
    resend = [row for row in late if row.attempts < max_attempts]
    resent = _resend(outbox, resend, connect_publisher, now) if resend else 0
    waiting = len(rows) - len(done) - failed - resent
    return Reconciled(confirmed, resent, failed, waiting)


def _give_up(outbox: Outbox, row: OutboxRow) -> bool:
    if not outbox.fail(row):
        return False
    FAILED.inc()
    log.error(
        "outbox: %s %s (updated_at %d) is still not in the index after %d re-sends; marked "
        "failed (check the dead-letter topic)",
        row.op,
        row.post_id,
        row.updated_epoch,
        row.attempts,
    )
    return True


def _resend(
    outbox: Outbox,
    rows: Iterable[OutboxRow],
    connect_publisher: Callable[[], Publisher],
    now: datetime,
) -> int:
    """Claim, then send. Connecting comes first, so an unreachable broker costs no attempt."""
    with connect_publisher() as publisher:
        claimed = [row for row in rows if outbox.claim(row, now)]
        if claimed:
            publisher.send_records([(row.key, row.value) for row in claimed])
    RESENT.inc(len(claimed))
    if claimed:
        log.warning(
            "outbox: re-sent %d accepted articles the index does not hold yet (first %s)",
            len(claimed),
            ", ".join(row.post_id for row in claimed[:5]),
        )
    return len(claimed)


def milvus_versions(settings: Settings) -> IndexedVersions:
    """Read versions from the collection the articles alias serves (connecting on first use,
    so a run over an empty outbox touches no Milvus)."""

    def read(post_ids: list[str]) -> dict[str, int]:
        client = connect(settings.milvus_uri, settings.data_dir)
        try:
            return indexed_versions(client, settings.articles_alias, post_ids)
        finally:
            client.close()

    return read


def indexed_versions(client: MilvusClient, alias: str, post_ids: list[str]) -> dict[str, int]:
    """Versions of ``post_ids`` behind ``alias``, read the way ingest reads them
    (Strong consistency, so a write the worker just acknowledged is seen)."""
    target = alias_target(client, alias)
    if target is None:  # no collection yet: nothing is indexed
        return {}
    # A restarted Milvus brings collections back released, and `chatda up` reconciles before
    # the worker has loaded it: load first (a no-op when loaded) instead of letting the read
    # fail, which pymilvus logs as an error with a traceback on every restart.
    create_articles_collection(client, target)
    held = indexed_posts(client, target, post_ids)
    return {post_id: post.updated_at for post_id, post in held.items()}


def reconcile_from_settings(
    settings: Settings, engine: Engine, grace_s: float | None
) -> Reconciled:
    """One pass with the configured store, Milvus, broker and limits."""
    return reconcile(
        Outbox(engine),
        milvus_versions(settings),
        lambda: Publisher(
            settings.kafka_bootstrap, settings.articles_topic, settings.article_partitions
        ),
        grace_s=settings.outbox_grace_s if grace_s is None else grace_s,
        max_attempts=settings.outbox_max_attempts,
    )


def reconcile_outbox_job(settings: Settings, engine: Engine) -> str:
    """The scheduled job: a detail only when something was re-sent or given up on."""
    return reconcile_from_settings(settings, engine, None).detail()
