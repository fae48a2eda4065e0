"""audit_append_only: the database refuses UPDATE and DELETE on the audit log

No route, command or page edits the log; these triggers make that hold for anything else that
holds the database too (a script, a bug). Rows already there are untouched. On SQLite a
migration that rebuilds `auditevent` (batch mode copies the table) drops its triggers: such a
migration must come before this one, or create them again (tests/core/test_audit_log.py
checks a store at head refuses).

Revision ID: 0015_audit_append_only
Revises: 0014_workspaces (re-chained on merge: keep this migration last)
Create Date: 2026-12-02 07:10:00
"""
from alembic import op

revision = '0015_audit_append_only'
down_revision = '0014_workspaces'  # keep this migration last: see the docstring
branch_labels = None
depends_on = None

MESSAGE = "the audit log is append-only: rows cannot be changed or deleted"

SQLITE = [
    f"""CREATE TRIGGER IF NOT EXISTS auditevent_no_{verb.lower()} BEFORE {verb} ON auditevent
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"""
    for verb in ("UPDATE", "DELETE")
]

POSTGRES = [
    f"""CREATE OR REPLACE FUNCTION auditevent_append_only() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege'; END
        $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER auditevent_no_change BEFORE UPDATE OR DELETE ON auditevent
        FOR EACH ROW EXECUTE FUNCTION auditevent_append_only()""",
    """CREATE TRIGGER auditevent_no_truncate BEFORE TRUNCATE ON auditevent
        FOR EACH STATEMENT EXECUTE FUNCTION auditevent_append_only()""",
]


def upgrade() -> None:
    for sql in (POSTGRES if op.get_bind().dialect.name == "postgresql" else SQLITE):
        op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS auditevent_no_truncate ON auditevent")
        op.execute("DROP TRIGGER IF EXISTS auditevent_no_change ON auditevent")
        op.execute("DROP FUNCTION IF EXISTS auditevent_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS auditevent_no_update")
        op.execute("DROP TRIGGER IF EXISTS auditevent_no_delete")
