"""workspaces: a Workspace table, a `workspace` column on every owned table, names unique per
workspace; every existing row moves into the workspace `default`

The column keeps the server default 'default' (SQLite cannot drop a default without rebuilding
every table): a row written by raw SQL without a workspace belongs to `default`, as every row
written before this release does. The list of owned tables is frozen here, as a migration's
must be (core/store/scope.py's `Owned` is the living one).

Revision ID: 0014_workspaces
Revises: 0013_artifacts
Create Date: 2026-12-02 07:10:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from datetime import datetime, timezone


revision = '0014_workspaces'
down_revision = '0013_artifacts'
branch_labels = None
depends_on = None

OWNED = ['alert', 'alias', 'aliasevent', 'auditevent', 'dataset', 'deployment', 'experiment',
         'job', 'jobtransition', 'modelversion', 'monitorconfig', 'predictionlog',
         'registeredmodel', 'requestinput', 'requestsample', 'run', 'runlatestmetric',
         'runmetric', 'runparam', 'runtag', 'schedule', 'servingstat', 'trial']
# (table, column): unique alone before, unique per workspace now
PER_WORKSPACE = [('dataset', 'fingerprint'), ('registeredmodel', 'name'),
                 ('experiment', 'name'), ('monitorconfig', 'model_name')]


def upgrade() -> None:
    workspace = op.create_table(
        'workspace',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_workspace_name', 'workspace', ['name'], unique=True)
    op.bulk_insert(workspace, [{'name': 'default', 'created_at': datetime.now(timezone.utc)}])
    for table in OWNED:
        op.add_column(table, sa.Column('workspace', sqlmodel.sql.sqltypes.AutoString(length=63),
                                       nullable=False, server_default='default'))
        op.create_index(f'ix_{table}_workspace', table, ['workspace'], unique=False)
    for table, column in PER_WORKSPACE:
        op.drop_index(f'ix_{table}_{column}', table_name=table)
        op.create_index(f'ix_{table}_{column}', table, [column], unique=False)
        op.create_index(f'uq_{table}_workspace_{column}', table, ['workspace', column],
                        unique=True)


def downgrade() -> None:
    for table, column in PER_WORKSPACE:
        op.drop_index(f'uq_{table}_workspace_{column}', table_name=table)
        op.drop_index(f'ix_{table}_{column}', table_name=table)
        op.create_index(f'ix_{table}_{column}', table, [column], unique=True)
    for table in OWNED:
        op.drop_index(f'ix_{table}_workspace', table_name=table)
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column('workspace')
    op.drop_index('ix_workspace_name', table_name='workspace')
    op.drop_table('workspace')
