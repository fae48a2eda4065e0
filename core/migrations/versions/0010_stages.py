"""modelversion.stage and modelversion.semver: the registry lifecycle (issue 15).

Existing versions get a stage from what the store already says: an archived version is
Archived, a holder of the `staging` alias is Staging, every other version None (the holder of
`production` is in Production through its alias, which is never stored as a stage). Labels are
derived in version order by the very rule registration applies (core/registry/semver.py).
The `archived` flag is dropped: the stage replaces it.

Revision ID: 0010_stages
Revises: 0009
Create Date: 2026-12-02 03:30:00
"""
import json

from alembic import op
import sqlalchemy as sa
import sqlmodel

from core.registry.semver import basis, next_label


revision = '0010_stages'
down_revision = '0009'
branch_labels = None
depends_on = None


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def _fill(conn) -> None:
    """Stages and labels for every version registered before this revision."""
    settings = {row.id: _json(row.settings) for row in conn.execute(sa.text(
        "SELECT id, settings FROM job"))}
    staging = {(row.model_id, row.version) for row in conn.execute(sa.text(
        "SELECT model_id, version FROM alias WHERE name = 'staging'"))}
    production = {(row.model_id, row.version) for row in conn.execute(sa.text(
        "SELECT model_id, version FROM alias WHERE name = 'production'"))}
    rows = conn.execute(sa.text(
        "SELECT id, model_id, version, archived, input_schema, dataset_fingerprint, job_id "
        "FROM modelversion ORDER BY model_id, version")).all()
    latest: dict[int, tuple[str, object]] = {}
    for row in rows:
        key = (row.model_id, row.version)
        stage = ("None" if key in production else "Archived" if row.archived
                 else "Staging" if key in staging else "None")
        current = basis(_json(row.input_schema), row.dataset_fingerprint,
                        settings.get(row.job_id) if row.job_id is not None else None)
        label, previous = latest.get(row.model_id, (None, None))
        label = next_label(label, previous, current)
        latest[row.model_id] = (label, current)
        conn.execute(sa.text("UPDATE modelversion SET stage = :stage, semver = :semver "
                             "WHERE id = :id"), {"stage": stage, "semver": label, "id": row.id})


def upgrade() -> None:
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=20),
                                      nullable=False, server_default='None'))
        batch_op.add_column(sa.Column('semver', sqlmodel.sql.sqltypes.AutoString(length=40),
                                      nullable=False, server_default=''))
    _fill(op.get_bind())
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.drop_column('archived')
        batch_op.create_unique_constraint('uq_model_semver', ['model_id', 'semver'])


def downgrade() -> None:
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.drop_constraint('uq_model_semver', type_='unique')
        batch_op.add_column(sa.Column('archived', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.get_bind().execute(sa.text(
        "UPDATE modelversion SET archived = (stage = 'Archived')"))
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.drop_column('semver')
        batch_op.drop_column('stage')
