"""monitoring alerts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 04:33:38.004647
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('feature', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('threshold', sa.Float(), nullable=True),
    sa.Column('consecutive', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('first_seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('opened_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('acknowledged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('acknowledged_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_model_name'), ['model_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_state'), ['state'], unique=False)

    op.create_table('monitorconfig',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('consecutive', sa.Integer(), nullable=False),
    sa.Column('max_error_rate', sa.Float(), nullable=False),
    sa.Column('max_p99_ms', sa.Float(), nullable=False),
    sa.Column('min_requests', sa.Integer(), nullable=False),
    sa.Column('max_accuracy_drop', sa.Float(), nullable=False),
    sa.Column('max_prediction_drift', sa.Float(), nullable=False),
    sa.Column('rollback_on_alert', sa.Boolean(), nullable=False),
    sa.Column('retrain_on_alert', sa.Boolean(), nullable=False),
    sa.Column('webhook_url', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('monitorconfig', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monitorconfig_model_name'), ['model_name'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('monitorconfig', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monitorconfig_model_name'))

    op.drop_table('monitorconfig')
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_state'))
        batch_op.drop_index(batch_op.f('ix_alert_model_name'))

    op.drop_table('alert')
