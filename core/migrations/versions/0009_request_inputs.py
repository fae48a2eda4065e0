"""request inputs: the rows each logged request scored, for feedback-labelled retraining

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 17:50:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('requestinput',
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('model_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('rows', sa.JSON(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('request_id')
    )
    with op.batch_alter_table('requestinput', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_requestinput_model_name'), ['model_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_requestinput_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('requestinput', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_requestinput_created_at'))
        batch_op.drop_index(batch_op.f('ix_requestinput_model_name'))

    op.drop_table('requestinput')
