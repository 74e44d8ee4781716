"""article outbox: accepted messages kept until Milvus holds them (survives a broker restart)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "article_outbox",
        sa.Column("post_id", sa.String(128), primary_key=True),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("updated_epoch", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_article_outbox_status", "article_outbox", ["status"])


def downgrade() -> None:
    op.drop_index("ix_article_outbox_status", table_name="article_outbox")
    op.drop_table("article_outbox")
