"""Datetimes read back from the SQL store: SQLite keeps no time zone, PostgreSQL does."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """The stored moment as an aware datetime (every column is written in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
