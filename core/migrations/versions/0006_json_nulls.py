"""JSON null → SQL NULL in predictionlog.actual / shadow_predictions

Predictions logged before this release stored a missing label as the JSON text 'null', so
`actual IS NOT NULL` counted every unlabelled prediction as labelled (live accuracy 0, false
PERFORMANCE alerts, scorecards padded with them). The columns now write SQL NULL; this turns
the old rows' JSON nulls into SQL NULLs. Data only: the schema is unchanged.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 07:45:00
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

COLUMNS = ("actual", "shadow_predictions")


def upgrade() -> None:
    as_text = "::text" if op.get_bind().dialect.name == "postgresql" else ""
    for col in COLUMNS:
        op.execute(f"UPDATE predictionlog SET {col} = NULL WHERE {col}{as_text} = 'null'")


def downgrade() -> None:
    pass  # SQL NULL reads back as None exactly like JSON null did
