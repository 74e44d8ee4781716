"""Intents in the SQL store, with optimistic concurrency and a catalog-wide version counter.

Every write bumps ``catalog_state.version`` in the same transaction, so API replicas polling it
see each edit exactly once and rebuild their in-memory snapshot.

The bump is each write transaction's first statement (``_writing``). Checks such as "the parent
exists" or "no children" read the table and then write; run as read-then-write, two writers
raced: SQLite's driver does not even begin the transaction before the first write, and in WAL
mode a transaction that read an older snapshot fails to upgrade ("database is locked"), so a
concurrent PUT and DELETE of one intent could answer 500. Writing the counter row first takes
the write lock up front (SQLite) or the row lock every catalog writer waits on (PostgreSQL), so
catalog writes run one at a time and every read inside one sees the latest committed state.

A row written new (a create, or any row of a ``replace`` import) starts at that catalog version,
not at 1: an editor holding the version of an intent that was since deleted, re-created or
replaced by an import would otherwise match the new row's version and overwrite it with a 200.
An intent's own version only ever rises with a catalog write, so it never passes the catalog's,
and the catalog's has risen past every version the old row had.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Connection, Engine, delete, insert, select, update

from chatda.catalog.errors import Conflict, IntentNotFound, InvalidCatalog
from chatda.catalog.models import Intent, IntentIn, IntentUpdate
from chatda.catalog.tree import check_tree
from chatda.db.tables import catalog_state, intents
from chatda.db.timestamps import as_utc


def _now() -> datetime:
    return datetime.now(UTC)


def _row_to_intent(row: object) -> Intent:
    data = dict(row._mapping)  # type: ignore[attr-defined]
    data["updated_at"] = as_utc(data["updated_at"])
    return Intent.model_validate(data)


def matches(intent: Intent, search: str) -> bool:
    """Whether ``search`` occurs (case-folded) in the intent's name, hints or memo."""
    needle = search.casefold()
    return (
        needle in intent.name.casefold()
        or needle in intent.memo.casefold()
        or any(needle in h.casefold() for h in intent.hints)
    )


def _values(item: IntentIn | IntentUpdate) -> dict[str, object]:
    """The columns an operator writes (an ``Intent`` read back carries the store's own too)."""
    return item.model_dump(mode="json", exclude={"version", "updated_at"})


class CatalogStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def version(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(catalog_state.c.version)).scalar()
        return int(value or 0)

    def _bump(self, conn: Connection) -> int:
        """The catalog version this write makes."""
        now = _now()
        if (
            conn.execute(
                update(catalog_state).values(version=catalog_state.c.version + 1, updated_at=now)
            ).rowcount
            == 0
        ):
            conn.execute(insert(catalog_state).values(id=1, version=1, updated_at=now))
        return int(conn.execute(select(catalog_state.c.version)).scalar_one())

    @contextmanager
    def _writing(self) -> Iterator[tuple[Connection, int]]:
        """One catalog write: the version bump first, so the transaction holds the lock;
        yields the connection and the catalog version the write makes (a new row's first)."""
        with self.engine.begin() as conn:
            yield conn, self._bump(conn)

    def _read(self, conn: Connection, intent_id: int) -> Intent:
        row = conn.execute(select(intents).where(intents.c.id == intent_id)).first()
        if row is None:
            raise IntentNotFound(f"intent {intent_id} not found", id=intent_id)
        return _row_to_intent(row)

    def _parents(self, conn: Connection) -> dict[int, int | None]:
        rows = conn.execute(select(intents.c.id, intents.c.parent_id))
        return {r.id: r.parent_id for r in rows}

    def list(self, search: str | None = None) -> list[Intent]:
        """All intents by id; ``search`` filters on name, hints and memo (the catalog is small)."""
        with self.engine.connect() as conn:
            found = [
                _row_to_intent(r) for r in conn.execute(select(intents).order_by(intents.c.id))
            ]
        return [i for i in found if matches(i, search)] if search else found

    def get(self, intent_id: int) -> Intent:
        with self.engine.connect() as conn:
            return self._read(conn, intent_id)

    def create(self, item: IntentIn) -> Intent:
        """The intent as this transaction wrote it (not re-read after a concurrent edit)."""
        with self._writing() as (conn, first_version):
            parents = self._parents(conn)
            if item.id in parents:
                raise Conflict(f"intent {item.id} already exists", id=item.id)
            parents[item.id] = item.parent_id
            check_tree(parents)
            conn.execute(
                insert(intents).values(**_values(item), updated_at=_now(), version=first_version)
            )
            return self._read(conn, item.id)

    def update(self, intent_id: int, item: IntentUpdate) -> Intent:
        """The intent as this transaction wrote it (not re-read after a concurrent edit)."""
        with self._writing() as (conn, _):
            parents = self._parents(conn)
            if intent_id not in parents:
                raise IntentNotFound(f"intent {intent_id} not found", id=intent_id)
            parents[intent_id] = item.parent_id
            check_tree(parents)
            result = conn.execute(
                update(intents)
                .where(intents.c.id == intent_id, intents.c.version == item.version)
                .values(**_values(item), updated_at=_now(), version=intents.c.version + 1)
            )
            if result.rowcount == 0:
                current = conn.execute(
                    select(intents.c.version).where(intents.c.id == intent_id)
                ).scalar()
                raise Conflict(
                    f"intent {intent_id} was changed by someone else (you edited version "
                    f"{item.version}, it is now {current}); reload and retry",
                    id=intent_id,
                    current_version=current,
                )
            return self._read(conn, intent_id)

    def delete(self, intent_id: int, version: int | None = None) -> None:
        with self._writing() as (conn, _):
            parents = self._parents(conn)
            if intent_id not in parents:
                raise IntentNotFound(f"intent {intent_id} not found", id=intent_id)
            children = sorted(k for k, v in parents.items() if v == intent_id)
            if children:
                raise Conflict(
                    f"intent {intent_id} has children {children}; move or delete them first",
                    id=intent_id,
                )
            query = delete(intents).where(intents.c.id == intent_id)
            if version is not None:
                query = query.where(intents.c.version == version)
            if conn.execute(query).rowcount == 0:
                raise Conflict(f"intent {intent_id} was changed by someone else", id=intent_id)

    def import_intents(
        self, items: Iterable[IntentIn], mode: Literal["replace", "merge"] = "replace"
    ) -> int:
        """All or nothing: the whole resulting tree is checked before one row is written."""
        items = list(items)
        ids = [i.id for i in items]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise InvalidCatalog(f"duplicate intent ids in import: {dupes}", ids=dupes)
        now = _now()
        with self._writing() as (conn, first_version):
            existing = self._parents(conn)
            parents = {} if mode == "replace" else dict(existing)
            parents.update({i.id: i.parent_id for i in items})
            check_tree(parents)
            if mode == "replace":
                conn.execute(update(intents).values(parent_id=None))
                conn.execute(delete(intents))
                existing = {}
            new = [i for i in items if i.id not in existing]
            for item in items:
                if item.id in existing:
                    conn.execute(
                        update(intents)
                        .where(intents.c.id == item.id)
                        .values(**_values(item), updated_at=now, version=intents.c.version + 1)
                    )
            # parents before children, so the foreign key holds row by row
            pending = {i.id: i for i in new}
            while pending:
                ready = [i for i in pending.values() if i.parent_id not in pending]
                for item in ready:
                    conn.execute(
                        insert(intents).values(
                            **_values(item), updated_at=now, version=first_version
                        )
                    )
                    del pending[item.id]
        return len(items)
