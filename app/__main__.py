"""`python -m app ...` is the `workbench` command (used to spawn workers)."""

from app.cli import main

main()
