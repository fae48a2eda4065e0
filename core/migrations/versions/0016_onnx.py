"""modelversion.onnx_parity: the last ONNX export's parity check (passed, max differences,
tolerance, rows, converter versions) or why the version cannot be exported. Existing versions
have never been exported: NULL.

Revision ID: 0016_onnx
Revises: 0015_audit_append_only
Create Date: 2026-12-02 07:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016_onnx'
down_revision = '0015_audit_append_only'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('onnx_parity', sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.drop_column('onnx_parity')
