"""servingstat.rejected: requests that reached a version but did not match its schema

Telemetry counted a version's requests and failures only when they were the candidate's;
now every request that reaches a version counts, by outcome (ok / failed / rejected). Rows
written before this release had no rejected requests counted, hence the default 0.

Revision ID: 0007_outcomes
Revises: 0006
Create Date: 2026-12-01 17:50:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0007_outcomes'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('servingstat', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rejected', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('servingstat', schema=None) as batch_op:
        batch_op.drop_column('rejected')
