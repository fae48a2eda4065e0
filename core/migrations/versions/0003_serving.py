"""serving: deployment rollout fields, serving telemetry, prediction log

Existing deployment rows get defaults (server_default), so upgrading keeps their state.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 04:09:54.092584
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('predictionlog',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('model_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('predictions', sa.JSON(), nullable=False),
    sa.Column('shadow_version', sa.Integer(), nullable=True),
    sa.Column('shadow_predictions', sa.JSON(), nullable=True),
    sa.Column('shadow_error', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('actual', sa.JSON(), nullable=True),
    sa.Column('feedback_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('predictionlog', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_predictionlog_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_predictionlog_model_name'), ['model_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_predictionlog_request_id'), ['request_id'], unique=True)

    op.create_table('servingstat',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('worker', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('latency_sum_ms', sa.Float(), nullable=False),
    sa.Column('latency_hist', sa.JSON(), nullable=False),
    sa.Column('predictions', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('servingstat', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_servingstat_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_servingstat_model_name'), ['model_name'], unique=False)

    with op.batch_alter_table('deployment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auto_advance', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('step_started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('revision', sa.Integer(), nullable=False, server_default='0'))



def downgrade() -> None:
    with op.batch_alter_table('deployment', schema=None) as batch_op:
        batch_op.drop_column('revision')
        batch_op.drop_column('step_started_at')
        batch_op.drop_column('auto_advance')

    with op.batch_alter_table('servingstat', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_servingstat_model_name'))
        batch_op.drop_index(batch_op.f('ix_servingstat_at'))

    op.drop_table('servingstat')
    with op.batch_alter_table('predictionlog', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_predictionlog_request_id'))
        batch_op.drop_index(batch_op.f('ix_predictionlog_model_name'))
        batch_op.drop_index(batch_op.f('ix_predictionlog_created_at'))

    op.drop_table('predictionlog')
