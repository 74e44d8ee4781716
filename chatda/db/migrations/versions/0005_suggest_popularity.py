"""suggestion popularity, computed once by a job instead of by every API process

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suggest_popularity",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("popularity", sa.Float, nullable=False),
        sa.Column("searches", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("suggest_popularity")
