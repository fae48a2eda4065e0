"""Monitoring: reference profiles, drift between a batch and a version's training data."""
