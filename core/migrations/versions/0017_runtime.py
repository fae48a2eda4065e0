"""deployment.runtimes: what answers each deployed version ({"3": "onnx"|"python"|"auto"}).
Existing deployments: NULL = auto for every version (python unless an ONNX export passed
parity and answers faster).

Revision ID: 0017_runtime
Revises: 0016_onnx
Create Date: 2026-12-02 10:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017_runtime'
down_revision = '0016_onnx'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deployment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('runtimes', sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('deployment', schema=None) as batch_op:
        batch_op.drop_column('runtimes')
