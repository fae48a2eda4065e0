"""The tracking tables: experiments, runs and what a run logs (params, metric histories,
tags). Owned by `core.tracking`; kept here with the other tables so one metadata and one
migration chain describe the whole store.

Lineage columns (dataset, job, version) are plain ids without foreign keys, as
`Job.version_id` is: a run records what it came from, and must never block deleting a
dataset no version still needs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field

from core.store.scope import Owned
from core.store.tables import utcnow


class Experiment(Owned, table=True):
    """A named group of runs (a training job's experiment is its model's name)."""

    __table_args__ = (Index("uq_experiment_workspace_name", "workspace", "name", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=200)
    description: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)


class Run(Owned, table=True):
    """One training job, one trial of a search (a child run), or a run a user logs."""

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", index=True)
    name: str = Field(default="", max_length=250)
    status: str = Field(default="RUNNING", index=True, max_length=20)  # RunStatus
    source: str = Field(default="user", max_length=20)  # RunSource: job | trial | user
    start_time: datetime = Field(default_factory=utcnow, index=True)
    end_time: datetime | None = None
    parent_run_id: int | None = Field(default=None, foreign_key="run.id", index=True)
    dataset_id: int | None = None
    job_id: int | None = Field(default=None, index=True)
    version_id: int | None = None


class RunParam(Owned, table=True):
    """A parameter: logged once per run (a second, different value is refused). `value_num`
    holds the number a numeric value reads as, so filters compare 10 > 9 as numbers."""

    __table_args__ = (UniqueConstraint("run_id", "key", name="uq_runparam_key"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    key: str = Field(max_length=250)
    value: str = Field(default="", sa_column=Column(Text, nullable=False))
    value_num: float | None = None


class RunMetric(Owned, table=True):
    """One point of a metric's history: append-only, never updated."""

    __table_args__ = (Index("ix_runmetric_run_key", "run_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id")
    key: str = Field(max_length=250)
    value: float
    step: int = 0
    timestamp: datetime = Field(default_factory=utcnow)


class RunLatestMetric(Owned, table=True):
    """Each metric's latest point (highest step, then newest): what filters and sorting by
    `metrics.KEY` compare, kept beside the history so a query needs no window function."""

    run_id: int = Field(foreign_key="run.id", primary_key=True)
    key: str = Field(primary_key=True, max_length=250)
    value: float
    step: int = 0
    timestamp: datetime = Field(default_factory=utcnow)


class RunTag(Owned, table=True):
    """A free-form label; logging a tag again replaces its value."""

    run_id: int = Field(foreign_key="run.id", primary_key=True)
    key: str = Field(primary_key=True, max_length=250)
    value: str = Field(default="", sa_column=Column(Text, nullable=False))
