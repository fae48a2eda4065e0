"""modelversion.stored_fingerprint and dataset.stored_fingerprint: the artifact store (issues
16 and 19).

A version's `fingerprint` stays the SHA-256 of its plaintext (its identity); the new column is
the SHA-256 of the bytes actually stored, which differ once an artifact is encrypted (and
change when `workbench rotate-key` re-encrypts it). Every version registered before this
revision was stored in plaintext, so its stored fingerprint is its fingerprint. Dataset files
had no file fingerprint: theirs stays NULL (loaded unverified, as before) until a rotation
rewrites them.

Revision ID: 0013_artifacts
Revises: 0012_identity
Create Date: 2026-12-02 07:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013_artifacts'
down_revision = '0012_identity'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stored_fingerprint',
                                      sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
    with op.batch_alter_table('dataset', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stored_fingerprint',
                                      sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
    op.execute("UPDATE modelversion SET stored_fingerprint = fingerprint")


def downgrade() -> None:
    with op.batch_alter_table('dataset', schema=None) as batch_op:
        batch_op.drop_column('stored_fingerprint')
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.drop_column('stored_fingerprint')
