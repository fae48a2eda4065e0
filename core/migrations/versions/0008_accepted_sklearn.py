"""modelversion.accepted_sklearn: a user's acceptance of an artifact saved by another
scikit-learn, recorded as the running version it was accepted on (another upgrade asks again).

Revision ID: 0008
Revises: 0007_outcomes
Create Date: 2026-12-01 18:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007_outcomes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accepted_sklearn',
                                      sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.drop_column('accepted_sklearn')
