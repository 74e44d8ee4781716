"""search feedback events (impressions and clicks)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("query_id", sa.String(36), nullable=False),
        sa.Column("query", sa.Text, nullable=True),
        sa.Column("known_query", sa.Boolean, nullable=False),
        sa.Column("shown", sa.JSON, nullable=True),
        sa.Column("clicked_id", sa.String(256), nullable=True),
        sa.Column("position", sa.Integer, nullable=True),
        sa.Column("dwell_ms", sa.Integer, nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_search_events_event_id"),
    )
    op.create_index("ix_search_events_query_id", "search_events", ["query_id"])
    op.create_index("ix_search_events_received_at", "search_events", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_search_events_received_at", "search_events")
    op.drop_index("ix_search_events_query_id", "search_events")
    op.drop_table("search_events")
