"""jobs workers schedules

Existing job rows get defaults (server_default), so upgrading a store keeps its ledger.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 04:08:09.310184
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('schedule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('cron', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('auto_canary', sa.Boolean(), nullable=False),
    sa.Column('gate_min_abs', sa.Float(), nullable=False),
    sa.Column('gate_min_rel', sa.Float(), nullable=False),
    sa.Column('last_run_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('next_run_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('schedule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_schedule_model_name'), ['model_name'], unique=False)

    op.create_table('worker',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('host', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('heartbeat_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('stopped_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pause_requested', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('trigger', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False, server_default='manual'))
        batch_op.add_column(sa.Column('schedule_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('max_attempts', sa.Integer(), nullable=False, server_default='3'))
        batch_op.add_column(sa.Column('not_before', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('cpu_seconds', sa.Float(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('peak_memory_mb', sa.Float(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('gate', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.create_foreign_key('fk_job_schedule_id', 'schedule', ['schedule_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_constraint('fk_job_schedule_id', type_='foreignkey')
        batch_op.drop_column('gate')
        batch_op.drop_column('peak_memory_mb')
        batch_op.drop_column('cpu_seconds')
        batch_op.drop_column('not_before')
        batch_op.drop_column('max_attempts')
        batch_op.drop_column('attempts')
        batch_op.drop_column('schedule_id')
        batch_op.drop_column('trigger')
        batch_op.drop_column('pause_requested')

    op.drop_table('worker')
    with op.batch_alter_table('schedule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedule_model_name'))

    op.drop_table('schedule')
