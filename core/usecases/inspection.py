"""Read-only views the UI and CLI show and the API serves too: a job's log and leaderboard,
the suggestions and feature importance stored with a version, a version's lineage graph, the
deployments of every model, and the estimator catalogue with what a user may override.

Each view is a typed record (the REST response models), built from what is stored: nothing
here trains, loads an artifact or writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, select

from core.automl.catalog import CATALOG
from core.automl.metrics import METRICS
from core.deploy.deployments import get_state
from core.deploy.public import DeploymentState
from core.enums import TrialState
from core.jobs import ledger
from core.jobs.public import TransitionPublic, TrialPublic
from core.jobs.states import JobState
from core.registry import list_models, resolve
from core.registry.aliases import alias_version
from core.registry.stages import stage_of
from core.store import Dataset, Job, ModelVersion, RegisteredModel
from core.store.scope import owned_get
from core.tracking.job_runs import job_run

MAX_LINEAGE_NODES = 500  # a long retraining chain is cut here (the answer says so)


# -- jobs -------------------------------------------------------------------------------------
class JobLogs(BaseModel):
    """A job's captured log and its state changes (`workbench logs ID`)."""

    job_id: int
    state: JobState
    transitions: list[TransitionPublic]
    log: str


class LeaderboardRow(TrialPublic):
    """A trial with its rank: scored trials best first, then pruned and failed ones (with
    their reason) in the order they ran."""

    rank: int


class JobTrials(BaseModel):
    job_id: int
    metric: str
    greater_is_better: bool
    trials: list[LeaderboardRow]


def job_logs(job_id: int, *, session: Session) -> JobLogs:
    job = ledger.get_job(job_id, session=session)
    moves = ledger.transitions_of(job_id, session=session)
    return JobLogs(job_id=job.id, state=job.state, log=job.log or "",
                   transitions=[TransitionPublic.of(t) for t in moves])


def job_trials(job_id: int, *, session: Session) -> JobTrials:
    job = ledger.get_job(job_id, session=session)
    metric = METRICS.get(job.metric)
    higher = metric.greater_is_better if metric is not None else True
    rows = [TrialPublic.of(t) for t in ledger.trials_of(job_id, session=session)]
    scored = sorted((t for t in rows if t.status == TrialState.OK and t.cv_mean is not None),
                    key=lambda t: t.cv_mean if higher else -t.cv_mean, reverse=True)
    rest = [t for t in rows if t not in scored]
    ranked = [LeaderboardRow(**dict(t), rank=i) for i, t in enumerate([*scored, *rest], 1)]
    return JobTrials(job_id=job.id, metric=job.metric, greater_is_better=higher,
                     trials=ranked)


# -- what a version stores ----------------------------------------------------------------------
class Suggestions(BaseModel):
    """Plain-language advice drawn from a search (stored with the version it registered)."""

    model: str | None
    version: int | None
    job_id: int | None
    suggestions: list[str]
    note: str | None = Field(default=None, description="Why there are none, when so.")


class FeatureImportance(BaseModel):
    feature: str
    importance: float
    std: float


class Importance(BaseModel):
    """Permutation importance on held-out rows: the mean drop of the metric when a column is
    shuffled."""

    model: str
    version: int
    metric: str
    features: list[FeatureImportance]
    note: str | None = None


def _version(name: str, version: int, session: Session) -> tuple[str, ModelVersion]:
    return resolve(f"{name}:{version}", session=session)


def version_suggestions(name: str, version: int, *, session: Session) -> Suggestions:
    name, mv = _version(name, version, session)
    tips = list(mv.evaluation.get("suggestions") or [])
    note = None if tips or mv.job_id else ("This version was not trained here (imported), so "
                                           "there is no search to draw advice from.")
    return Suggestions(model=name, version=mv.version, job_id=mv.job_id, suggestions=tips,
                       note=note)


def job_suggestions(job_id: int, *, session: Session) -> Suggestions:
    job = ledger.get_job(job_id, session=session)
    mv = session.get(ModelVersion, job.version_id) if job.version_id else None
    if mv is None:
        state = JobState(job.state)
        why = ("it is still " + state.lower() if not state.is_terminal
               else f"it ended {state.lower()} without registering a version")
        return Suggestions(model=job.model_name, version=None, job_id=job.id, suggestions=[],
                           note=f"Suggestions come with the version a job registers: {why}.")
    return Suggestions(model=job.model_name, version=mv.version, job_id=job.id,
                       suggestions=list(mv.evaluation.get("suggestions") or []))


def version_importance(name: str, version: int, *, session: Session) -> Importance:
    name, mv = _version(name, version, session)
    rows = [FeatureImportance(**r) for r in mv.evaluation.get("feature_importance") or []]
    note = None
    if not rows:
        skipped = [n for n in mv.evaluation.get("notes") or []
                   if n.startswith("Feature importance was not computed")]
        note = skipped[0] if skipped else (
            "No feature importance was recorded for this version (imported, or trained "
            "before importance was computed).")
    return Importance(model=name, version=mv.version, metric=mv.metric, features=rows,
                      note=note)


# -- lineage ----------------------------------------------------------------------------------
class LineageNode(BaseModel):
    id: str = Field(description="kind:key, unique in the graph (e.g. version:churn:2).")
    kind: str = Field(description="dataset, job or version (more kinds may be added).")
    label: str
    detail: dict[str, Any] = Field(default_factory=dict)


class LineageEdge(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: str = Field(alias="from")
    to: str
    relation: str


class Lineage(BaseModel):
    """Where a version came from: its dataset, the job that trained it, and the versions
    it was retrained from, each with their own dataset and job."""

    root: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    truncated: bool = False


Expansion = list[tuple[LineageNode, LineageEdge]]


def _dataset_node(ds: Dataset) -> LineageNode:
    return LineageNode(id=f"dataset:{ds.id}", kind="dataset", label=ds.name,
                       detail={"fingerprint": ds.fingerprint, "rows": ds.n_rows,
                               "columns": ds.n_cols})


def _expand_version(session: Session, mv: ModelVersion) -> Expansion:
    me = _version_id(session, mv)
    out: Expansion = []
    job = session.get(Job, mv.job_id) if mv.job_id else None
    if job is not None:
        node = LineageNode(id=f"job:{job.id}", kind="job", label=f"job {job.id} ({job.kind})",
                           detail={"state": job.state, "trigger": job.trigger,
                                   "settings": job.settings})
        out.append((node, LineageEdge(from_=node.id, to=me, relation="registered")))
    elif mv.dataset_id is not None and (ds := session.get(Dataset, mv.dataset_id)):
        node = _dataset_node(ds)
        out.append((node, LineageEdge(from_=node.id, to=me, relation="trained_on")))
    if mv.parent_version is not None:
        parent = session.exec(select(ModelVersion).where(
            ModelVersion.model_id == mv.model_id,
            ModelVersion.version == mv.parent_version)).first()
        if parent is not None:
            out.append((_version_node(session, parent),
                        LineageEdge(from_=me, to=_version_id(session, parent),
                                    relation="parent")))
    return out


def _expand_job(session: Session, job: Job) -> Expansion:
    out: Expansion = []
    run = job_run(job.id, session=session)
    if run is not None:  # the job's tracking run: its params, metric history and artifacts
        node = LineageNode(id=f"run:{run.id}", kind="run", label=f"run {run.id}",
                           detail={"name": run.name, "status": run.status})
        out.append((node, LineageEdge(from_=f"job:{job.id}", to=node.id,
                                      relation="tracked_as")))
    ds = session.get(Dataset, job.dataset_id) if job.dataset_id else None
    if ds is not None:
        node = _dataset_node(ds)
        out.append((node, LineageEdge(from_=node.id, to=f"job:{job.id}", relation="input")))
    return out


def _model_name(session: Session, model_id: int) -> str:
    return session.get(RegisteredModel, model_id).name


def _version_id(session: Session, mv: ModelVersion) -> str:
    return f"version:{_model_name(session, mv.model_id)}:{mv.version}"


def _version_node(session: Session, mv: ModelVersion) -> LineageNode:
    name = _model_name(session, mv.model_id)
    production = alias_version(session, mv.model_id, "production") == mv.version
    return LineageNode(id=f"version:{name}:{mv.version}", kind="version",
                       label=f"{name} v{mv.version}",
                       detail={"semver": mv.semver, "stage": stage_of(mv, production).value,
                               "estimator": mv.estimator, "metric": mv.metric,
                               "score": mv.score, "created_at": mv.created_at.isoformat()})


# how each kind of node leads to its sources: (how to load the row behind a node id's key,
# how to expand it). Adding a kind (runs) is adding an entry.
EXPANDERS: dict[str, tuple[Callable[[Session, str], Any], Callable[[Session, Any], Expansion]]] = {
    "version": (lambda s, key: _version_row(s, key), _expand_version),
    "job": (lambda s, key: owned_get(s, Job, int(key)), _expand_job),
}


def _version_row(session: Session, key: str) -> ModelVersion | None:
    name, _, number = key.rpartition(":")
    model = session.exec(select(RegisteredModel).where(RegisteredModel.name == name)).first()
    if model is None:
        return None
    return session.exec(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                                   ModelVersion.version == int(number))).first()


def version_lineage(name: str, version: int, *, session: Session) -> Lineage:
    """The graph from a version back to its sources (breadth first, each node once)."""
    name, mv = _version(name, version, session)
    root = _version_node(session, mv)
    nodes, edges, queue = {root.id: root}, [], [root]
    truncated = False
    while queue:
        node = queue.pop(0)
        load, expand = EXPANDERS.get(node.kind, (None, None))
        row = load(session, node.id.split(":", 1)[1]) if load else None
        for child, edge in expand(session, row) if row is not None else []:
            if edge not in edges:
                edges.append(edge)
            if child.id in nodes:
                continue
            if len(nodes) >= MAX_LINEAGE_NODES:
                truncated = True
                continue
            nodes[child.id] = child
            queue.append(child)
    edges = [e for e in edges if e.from_ in nodes and e.to in nodes]
    return Lineage(root=root.id, nodes=list(nodes.values()), edges=edges, truncated=truncated)


# -- deployments and the catalogue --------------------------------------------------------------
def list_deployments(*, session: Session) -> list[DeploymentState]:
    """The traffic rule of every model that serves: a production version or a candidate."""
    states = [get_state(m.name, session=session) for m in list_models(session=session)]
    return [st for st in states if st.stable is not None or st.candidate is not None]


class ParameterSpace(BaseModel):
    """What a user may set for one parameter in `search_space`."""

    name: str
    type: str = Field(description="int, float or categorical.")
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None
    searched_by_default: bool


class CatalogEntry(BaseModel):
    key: str
    label: str
    tasks: list[str]
    defaults: list[dict[str, Any]]
    parameters: list[ParameterSpace]


def _parameter(name: str, dist: BaseDistribution, searched: bool) -> ParameterSpace:
    if isinstance(dist, CategoricalDistribution):
        return ParameterSpace(name=name, type="categorical", choices=list(dist.choices),
                              searched_by_default=searched)
    return ParameterSpace(name=name, type="int" if isinstance(dist, IntDistribution)
                          else "float", low=dist.low, high=dist.high, log=dist.log,
                          searched_by_default=searched)


def catalog(task: str | None = None) -> list[CatalogEntry]:
    """Every estimator with its overridable parameters and their allowed values."""
    return [CatalogEntry(key=spec.key, label=spec.label, tasks=sorted(spec.tasks),
                         defaults=spec.defaults,
                         parameters=[_parameter(n, d, n in spec.space)
                                     for n, d in spec.searchable(task).items()])
            for spec in CATALOG.values() if task is None or _serves(spec.tasks, task)]


def _serves(tasks: frozenset[str], task: str) -> bool:
    return task in tasks or (task == "classification" and bool(tasks - {"regression"}))
