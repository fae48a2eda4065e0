"""request samples

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 05:12:35.369868
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('requestsample',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('seen', sa.Integer(), nullable=False),
    sa.Column('rows', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('requestsample', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_requestsample_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_requestsample_model_name'), ['model_name'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('requestsample', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_requestsample_model_name'))
        batch_op.drop_index(batch_op.f('ix_requestsample_at'))

    op.drop_table('requestsample')
