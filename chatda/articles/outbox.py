"""``Outbox``: the SQL-store record of every accepted article message not yet confirmed in Milvus.

A 202 must mean "will be searchable", but the embedded broker keeps records in memory, and any
broker can lose a record it acknowledged (an unclean leader election, a wiped volume). So the
one publish path (``chatda.articles.publisher.Publisher``) writes each message here *before*
sending it, and the reconciler (``indexer.outbox_job``) removes a row once the index holds that
version, re-sending rows the index has not confirmed in time. The store is the durable part;
Kafka stays a transport whose loss is repaired.

One row per ``post_id``, the newest ``updated_at`` winning (equal versions: the later send), as
a compacted topic would keep it: an older upsert can never outlive a newer delete here and
bring a removed article back on a re-send. Every state change is a conditional statement on
the row's payload, so two publishers, two reconcilers, or a reconciler and a publisher racing
on one article never undo each other's newer work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from chatda.articles.message import ArticleMessage
from chatda.db.engine import make_engine, upgrade
from chatda.db.tables import article_outbox
from chatda.db.timestamps import as_utc
from chatda.settings import Settings

PENDING = "pending"
FAILED = "failed"
_SELECT_CHUNK = 500


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One accepted message as the outbox holds it."""

    post_id: str
    op: str
    updated_epoch: int
    payload: str
    status: str
    attempts: int
    sent_at: datetime

    @property
    def key(self) -> bytes:
        return self.post_id.encode("ascii")

    @property
    def value(self) -> bytes:
        return self.payload.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Receipt:
    """What one ``record`` replaced, so a send that fails can be taken back exactly."""

    written: tuple[tuple[str, str], ...]  # (post_id, payload) this call wrote
    previous: tuple[dict[str, Any], ...]  # the rows those replaced


class Outbox:
    """The ``article_outbox`` table of one SQL store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_settings(cls, settings: Settings) -> Outbox:
        """The outbox of the configured SQL store, its schema brought to head."""
        engine = make_engine(settings.sql_url)
        upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        """Release the store's connections (the engine reconnects if used again)."""
        self.engine.dispose()

    def record(self, messages: Sequence[ArticleMessage], now: datetime | None = None) -> Receipt:
        """Keep each message as accepted (pending, sent now), unless a newer one is kept.

        Runs in one transaction; the upsert's ``WHERE`` makes "newest wins" hold even when
        another process writes the same article at the same moment.
        """
        sent_at = now or datetime.now(UTC)
        newest: dict[str, ArticleMessage] = {}
        for message in messages:
            held = newest.get(message.post_id)
            if held is None or message.updated_epoch >= held.updated_epoch:
                newest[message.post_id] = message
        payloads = {post_id: m.to_wire().decode("utf-8") for post_id, m in newest.items()}
        values = [
            {
                "post_id": m.post_id,
                "op": m.op,
                "updated_epoch": m.updated_epoch,
                "payload": payloads[m.post_id],
                "status": PENDING,
                "attempts": 0,
                "sent_at": sent_at,
            }
            for m in newest.values()
        ]
        if not values:
            return Receipt((), ())
        with self.engine.begin() as conn:
            previous = [dict(r._mapping) for r in self._select(conn, list(newest))]
            stmt = _dialect_insert(self.engine)(article_outbox).values(values)
            replaced = {c: getattr(stmt.excluded, c) for c in values[0] if c != "post_id"}
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[article_outbox.c.post_id],
                    set_=replaced,
                    where=stmt.excluded.updated_epoch >= article_outbox.c.updated_epoch,
                )
            )
            written = [(r.post_id, r.payload) for r in self._select(conn, list(newest))]
        kept = tuple((p, payload) for p, payload in written if payloads[p] == payload)
        kept_ids = {post_id for post_id, _ in kept}
        return Receipt(kept, tuple(p for p in previous if p["post_id"] in kept_ids))

    def withdraw(self, receipt: Receipt) -> None:
        """Take back a ``record`` whose send failed: the rows it replaced come back.

        A row only goes back if it still holds what this call wrote; a newer version written
        meanwhile stays. Restoring (not just deleting) keeps an older accepted version that
        the failed one had displaced: that one was answered 202 and must still be delivered.
        """
        previous = {row["post_id"]: row for row in receipt.previous}
        with self.engine.begin() as conn:
            for post_id, payload in receipt.written:
                mine = (article_outbox.c.post_id == post_id) & (article_outbox.c.payload == payload)
                conn.execute(delete(article_outbox).where(mine))
                if post_id in previous:
                    held = self._select(conn, [post_id])
                    if not held:
                        conn.execute(insert(article_outbox).values(previous[post_id]))

    def unconfirmed(self, limit: int = 1000) -> list[OutboxRow]:
        """Rows not yet confirmed, pending before failed, oldest send first."""
        query = (
            select(article_outbox)
            .order_by(article_outbox.c.status.desc(), article_outbox.c.sent_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def confirm(self, rows: Iterable[OutboxRow]) -> int:
        """Remove rows the index holds; a row replaced by a newer version meanwhile stays."""
        removed = 0
        with self.engine.begin() as conn:
            for row in rows:
                removed += conn.execute(delete(article_outbox).where(_unchanged(row))).rowcount
        return removed

    def claim(self, row: OutboxRow, now: datetime | None = None) -> bool:
        """Take ``row`` for one re-send: attempts + 1, sent now. False if another reconciler
        (or a newer publish) changed the row since it was read, so it is sent by one only."""
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(article_outbox)
                .where(_unchanged(row) & (article_outbox.c.status == PENDING))
                .values(attempts=row.attempts + 1, sent_at=now or datetime.now(UTC))
            )
        return claimed.rowcount == 1

    def fail(self, row: OutboxRow) -> bool:
        """Mark ``row`` failed: no more re-sends (still removed if the index confirms it)."""
        with self.engine.begin() as conn:
            failed = conn.execute(
                update(article_outbox)
                .where(_unchanged(row) & (article_outbox.c.status == PENDING))
                .values(status=FAILED)
            )
        return failed.rowcount == 1

    @staticmethod
    def _select(conn: Any, post_ids: list[str]) -> list[Any]:
        rows: list[Any] = []
        for start in range(0, len(post_ids), _SELECT_CHUNK):
            group = post_ids[start : start + _SELECT_CHUNK]
            rows.extend(
                conn.execute(select(article_outbox).where(article_outbox.c.post_id.in_(group)))
            )
        return rows


def _dialect_insert(engine: Engine) -> Any:
    """``INSERT … ON CONFLICT`` of the store's dialect (SQLite here, PostgreSQL in production)."""
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def _unchanged(row: OutboxRow) -> Any:
    """The row exactly as it was read: same version, same payload, same attempt count."""
    c = article_outbox.c
    return (
        (c.post_id == row.post_id)
        & (c.payload == row.payload)
        & (c.attempts == row.attempts)
        & (c.updated_epoch == row.updated_epoch)
    )


def _row(record: Any) -> OutboxRow:
    return OutboxRow(
        post_id=record.post_id,
        op=record.op,
        updated_epoch=int(record.updated_epoch),
        payload=record.payload,
        status=record.status,
        attempts=int(record.attempts),
        sent_at=as_utc(record.sent_at),
    )
