"""Table definitions: the one description of the schema that migrations and queries share."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
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
    UniqueConstraint,
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

# Search feedback (impressions and clicks), one row per accepted event. ``event_id`` is unique
# so a replayed Kafka record or a retried direct write is stored once.
search_events = Table(
    "search_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("type", String(16), nullable=False),
    Column("query_id", String(36), nullable=False, index=True),
    Column("query", Text, nullable=True),
    Column("known_query", Boolean, nullable=False),
    Column("shown", JSON, nullable=True),
    Column("clicked_id", String(256), nullable=True),
    Column("clicked_kind", String(8), nullable=True),
    Column("position", Integer, nullable=True),
    Column("dwell_ms", Integer, nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
    UniqueConstraint("event_id", name="uq_search_events_event_id"),
)

# Scheduled job runs (indexer/): what ran, when, how it ended — `chatda jobs list` shows them.
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False, index=True),
    Column("trigger", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("status", String(16), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
)

# Click-through per shown item (article or intent id), rebuilt from search_events by the
# feedback job, for threshold review and retraining.
item_stats = Table(
    "item_stats",
    metadata,
    Column("item_id", String(256), primary_key=True),
    Column("impressions", Integer, nullable=False),
    Column("clicks", Integer, nullable=False),
    Column("ctr", Float, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# What suggestions rank by, rebuilt from search_events by the refresh-suggestions job and read
# by every API process: kind "query" (a query text) or "item" (a clicked article or intent id).
suggest_popularity = Table(
    "suggest_popularity",
    metadata,
    Column("kind", String(8), primary_key=True),
    Column("key", String(512), primary_key=True),
    Column("popularity", Float, nullable=False),
    Column("searches", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The transactional outbox of article publishing: every accepted message, one row per post_id
# (the newest version wins, like a compacted topic), written before the Kafka send and removed
# once Milvus holds that version. The reconciler (chatda.articles.outbox) re-sends rows the
# index has not confirmed, so a 202 survives an in-memory broker's restart.
article_outbox = Table(
    "article_outbox",
    metadata,
    Column("post_id", String(128), primary_key=True),
    Column("op", String(8), nullable=False),
    Column("updated_epoch", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(8), nullable=False, index=True),
    Column("attempts", Integer, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)
