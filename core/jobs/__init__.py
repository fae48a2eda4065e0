"""Training jobs: the ledger (state machine) and, later, workers and schedules."""
