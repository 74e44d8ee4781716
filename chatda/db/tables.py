"""Table definitions: the one description of the schema that migrations and queries share."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

intents = Table(
    "intents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("parent_id", Integer, ForeignKey("intents.id"), nullable=True, index=True),
    Column("service_id", Integer, nullable=True),
    Column("name", String(200), nullable=False),
    Column("hints", JSON, nullable=False),
    Column("memo", Text, nullable=False, default=""),
    Column("open", Boolean, nullable=False, default=True),
    Column("areas", JSON, nullable=False),
    Column("threshold", Float, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False, default=1),
)

# One row, bumped in the same transaction as every catalog edit: replicas poll it to converge.
catalog_state = Table(
    "catalog_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
