"""a click says what was clicked (an intent or an article), so an id shared by both is not
read as the other

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("search_events", sa.Column("clicked_kind", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("search_events") as batch:
        batch.drop_column("clicked_kind")
