"""One search across a Dask cluster: the trials run in parallel on the cluster's workers.

The driver (the process that called `run_search`: a `workbench worker` or `automl`) keeps
everything that decides: the Optuna studies (ask/tell here, never on the workers), the
budget-aware choice of the next estimator, the leaderboard, the refit and the ensemble. The
workers only cross-validate configurations. So:

- the training data go to every worker once (`client.scatter(..., broadcast=True)`), and
  each trial sends only its configuration and gets back its CV result;
- as many trials are in flight as the cluster has worker threads (re-read every second, so
  workers may join or leave); TPE runs with `constant_liar` so parallel trials spread out;
- the budget promise holds: at the deadline the running trials are stopped (a per-search
  `distributed.Event` they read between folds) and their futures cancelled, and the refit
  runs here as in a local search;
- cancel and pause reach running trials the same way; paused trials are re-queued in their
  study and run again after the resume;
- a worker lost mid-trial costs that trial only: it is recorded as failed with the reason
  and the search goes on with the workers left.

The workers must be able to import this project (the same image or installation as the
driver): a trial ships `evaluate_remote` by reference, not by value.
"""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import optuna
from threadpoolctl import threadpool_limits

from core.automl.catalog import EstimatorSpec
from core.automl.scheduler import Arm, choose
from core.automl.search import (
    SAMPLERS,
    SearchCancelled,
    SearchResult,
    TrialResult,
    _Search,
    behind,
    evaluate_trial,
)
from core.automl.train import TrainingData
from core.errors import WorkbenchError
from core.store.shapes import Params

log = logging.getLogger(__name__)

POLL_S = 0.2            # how often the driver looks at futures, cancel and the cluster
GATE_EVERY_S = 0.5      # pause checks (a database read each) at most this often
SLOTS_EVERY_S = 1.0     # re-read the cluster's worker threads this often
CONNECT_TIMEOUT_S = 10.0
RESENDS = 2             # a trial cancelled because its data went with a lost worker is sent again


class ClusterError(WorkbenchError):
    """The Dask scheduler cannot be reached, or has no workers for the whole budget."""


def connect(address: str) -> Any:
    """A client of the scheduler at `address`, or a message saying what to do."""
    from distributed import Client

    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(
            f"Cannot reach the Dask scheduler at {address!r} (WORKBENCH_DASK_SCHEDULER or "
            f"--dask): {exc}. Start one (`dask scheduler`, then `dask worker ADDRESS` on each "
            "machine), fix the address (tcp://HOST:8786), or unset it to search on this "
            "machine.") from None


def run_on_cluster(data: TrainingData, dask: Any, **options: Any) -> SearchResult:
    """`run_search` on the cluster `dask` (an address, or a `distributed.Client` the caller
    keeps open)."""
    client = connect(dask) if isinstance(dask, str) else dask
    try:
        return DaskSearch(data, client=client, **options).run()
    finally:
        if isinstance(dask, str):
            client.close()


def evaluate_remote(data: TrainingData, spec: EstimatorSpec, params: Params, *, seed: int,
                    number: int, incumbent: tuple[list[float], float] | None,
                    stop_event: str, deadline: float | None) -> TrialResult:
    """One trial on a Dask worker: the same evaluation as a local trial; between folds it
    stops when the driver set `stop_event` (cancel, pause, deadline), when the wall-clock
    `deadline` passed (None: this trial may finish late, no trial had finished when it
    started), or when it trails the `incumbent` (scores, std) the driver knew."""
    from distributed import Event, get_worker

    event = Event(stop_event)

    def stop(fold: int, scores: list[float]) -> str | None:
        try:
            if event.is_set():
                return "stopped by the search (cancel, pause or deadline)"
        except Exception:  # the scheduler briefly unreachable: the deadline still holds
            pass
        if deadline is not None and time.time() >= deadline:
            return "out of time"
        if incumbent is not None and behind(data.metric, fold, scores, *incumbent):
            return f"pruned after fold {fold + 1}: behind the best trial"
        return None

    started = time.monotonic()
    with threadpool_limits(limits=1):  # parallelism is the workers' threads, as locally
        seconds = None if deadline is None else 0.6 * (deadline - time.time()) / max(
            len(data.splits), 1)
        result = evaluate_trial(data, spec, params, seed=seed, number=number, stop=stop,
                                seconds=seconds)
    result.seconds = time.monotonic() - started
    result.worker = get_worker().address
    return result


@dataclass
class _InFlight:
    arm: Arm
    trial: optuna.trial.Trial
    params: Params
    number: int
    started: float
    data_key: str = ""  # the scattered training data the trial reads
    resent: int = 0


class DaskSearch(_Search):
    """`_Search` with the trial loop replaced by a pool of futures on a Dask cluster."""

    def __init__(self, data: TrainingData, *, client: Any, **options: Any) -> None:
        super().__init__(data, **options)
        self.client = client
        self.running: dict[Any, _InFlight] = {}
        self.asked = 0
        self.search_id = uuid.uuid4().hex[:12]
        self.epoch = 0                 # a pause stops one epoch's trials; new ones get a new one
        self.seen_on: dict[str, str] = {}  # future key -> the worker last seen running it
        self._slots, self._slots_at, self._gate_at = 0, float("-inf"), float("-inf")
        self.data_ref: Any = None

    def _sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        if self.sampler == "tpe":  # trials asked while others run: lie about those, spread out
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4, multivariate=True,
                                              constant_liar=True)
        return SAMPLERS["random" if self.sampler == "grid" else self.sampler](seed)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> SearchResult:
        workers = self.client.nthreads()
        log.info("search on the Dask cluster %s: %d worker(s), %d thread(s)",
                 self.client.scheduler.address, len(workers), sum(workers.values()))
        self.data_ref = self.client.scatter(self.data, broadcast=True, hash=False)
        reason = "stopped"
        try:
            reason = self._loop()
        finally:
            self._abandon(reason)
            self.client.cancel([self.data_ref], force=True)
        if self.should_stop is not None and self.should_stop():
            raise SearchCancelled()
        return self._finish()

    def _loop(self) -> str:
        """Keep the cluster busy until the budget, the trial limit or a stop; return why it
        ended (the reason running trials are recorded with)."""
        while True:
            if self.should_stop is not None and self.should_stop():
                return "cancelled"
            if self.max_trials is not None and len(self.trials) >= self.max_trials:
                return "trial limit reached"
            if self.trials and time.monotonic() >= self.end:
                return "out of time"
            if not self.trials and time.monotonic() >= self.end and self._slots_now() == 0:
                raise ClusterError(
                    f"The Dask cluster at {self.client.scheduler.address} had no workers for "
                    "the whole budget, so no trial ran. Start workers (`dask worker ADDRESS`) "
                    "or unset WORKBENCH_DASK_SCHEDULER to search on this machine.")
            self._gate()
            submitted = self._fill()
            if not self.running and not submitted:
                return "nothing more fits in the budget"
            self._collect()

    def _gate(self) -> None:
        """The pause gate, at most every GATE_EVERY_S (each call reads the job)."""
        if self.pause_gate is None or time.monotonic() - self._gate_at < GATE_EVERY_S:
            return
        self._gate_at = time.monotonic()
        if "before_pause" in inspect.signature(self.pause_gate).parameters:
            waited = self.pause_gate(before_pause=self._suspend)
        else:  # a gate that cannot warn us: running trials go on through the pause
            waited = self.pause_gate()
        self.end += waited

    def _slots_now(self) -> int:
        if time.monotonic() - self._slots_at >= SLOTS_EVERY_S:
            self._slots = sum(self.client.nthreads().values())
            self._slots_at = time.monotonic()
        return self._slots

    def _fill(self) -> int:
        """Submit trials until every worker thread has one; return how many."""
        slots, submitted = self._slots_now(), 0
        while len(self.running) < max(slots, 1):
            if (self.max_trials is not None
                    and len(self.trials) + len(self.running) >= self.max_trials):
                break
            remaining = self.end - time.monotonic() - self._refit_reserve()
            arm = choose(self.arms, remaining, self.rng)
            if arm is None:
                if self.trials or self.running:
                    break
                arm = min(self.arms, key=lambda a: a.spec.cost)  # always try one candidate
            self._submit(arm)
            submitted += 1
        return submitted

    def _submit(self, arm: Arm) -> None:
        number, self.asked = self.asked, self.asked + 1
        trial = arm.study.ask(arm.spec.space)
        self._send(_InFlight(arm, trial, dict(trial.params), number, time.monotonic()))

    def _send(self, pending: _InFlight) -> None:
        best = self.incumbent
        incumbent = (list(best.cv.scores), best.cv.std) if best and best.cv else None
        # like a local trial: only once some trial has finished may the deadline cut one
        deadline = time.time() + (self.end - time.monotonic()) if self.trials else None
        pending.data_key = self.data_ref.key
        future = self.client.submit(
            evaluate_remote, self.data_ref, pending.arm.spec, pending.params, seed=self.seed,
            number=pending.number, incumbent=incumbent, stop_event=self._event_name(),
            deadline=deadline, pure=False,
            key=f"workbench-trial-{self.search_id}-{pending.number}-{pending.resent}")
        pending.arm.running += 1
        self.running[future] = pending

    def _data_lost(self, pending: _InFlight) -> bool:
        """Whether the trial was cancelled because the training data went with a lost worker
        (Dask's memory manager keeps a single replica while no trial waits for it); the data
        is scattered again once, and the trials that read the old copy are sent again."""
        if pending.data_key != self.data_ref.key:
            return True  # already scattered again for an earlier trial of the same loss
        try:
            held = self.client.who_has([self.data_ref]).get(self.data_ref.key)
        except Exception:  # the scheduler cannot tell: treat the copy as lost
            held = None
        if self.data_ref.status == "finished" and held:
            return False
        log.warning("the training data went with a lost Dask worker: scattering it again")
        self.data_ref = self.client.scatter(self.data, broadcast=True, hash=False)
        return True

    def _event_name(self) -> str:
        return f"workbench-stop-{self.search_id}-{self.epoch}"

    def _collect(self) -> None:
        """Wait up to POLL_S for a trial to finish; tell every finished one; notice lost
        workers."""
        until = time.monotonic() + POLL_S  # the futures' states are kept by the client's thread
        while time.monotonic() < until and not any(f.done() for f in self.running):
            time.sleep(0.02)
        for future in [f for f in self.running if f.status != "pending"]:
            self._complete(future)
        self._watch_workers()

    def _complete(self, future: Any) -> None:
        pending = self.running.pop(future)
        pending.arm.running -= 1
        self.seen_on.pop(future.key, None)
        if (future.status == "cancelled" and pending.resent < RESENDS
                and self._data_lost(pending)):
            pending.resent += 1
            self._send(pending)
            return
        if future.status == "finished":
            result = future.result()  # its seconds: the trial's time on the worker, which
        else:                         # is what the next trial of its estimator will cost
            result = self._failed(pending, _problem(future))
            result.seconds = time.monotonic() - pending.started
        result.number = pending.number
        self._tell(pending.arm, pending.trial, result)

    def _failed(self, pending: _InFlight, reason: str) -> TrialResult:
        return TrialResult(pending.number, pending.arm.spec.key, pending.params, "failed",
                           reason=reason[:500])

    def _watch_workers(self) -> None:
        """A trial seen running on a worker that has since left the cluster is failed
        (Dask would quietly re-run it elsewhere: that time belongs to other trials)."""
        if not self.running:
            return
        processing = self.client.processing()
        alive = set(processing)
        for future in list(self.running):
            where = self.seen_on.get(future.key)
            if where is not None and where not in alive:
                pending = self.running.pop(future)
                pending.arm.running -= 1
                self.seen_on.pop(future.key, None)
                self.client.cancel([future], force=True)
                result = self._failed(pending, lost_reason(where))
                result.seconds = time.monotonic() - pending.started
                result.worker = where
                log.warning("trial %d: Dask worker %s lost mid-trial", pending.number, where)
                self._tell(pending.arm, pending.trial, result)
        keys = {f.key: f for f in self.running}
        for worker, running_keys in processing.items():
            for key in running_keys:
                if key in keys:
                    self.seen_on[key] = worker

    # -- stopping running trials -----------------------------------------------------------
    def _stop_epoch(self) -> list[tuple[Any, _InFlight]]:
        """Tell this epoch's running trials to stop at their next fold and cancel their
        futures; finished ones are told normally. Returns the ones stopped."""
        from distributed import Event

        for future in [f for f in self.running if f.status == "finished"]:
            self._complete(future)
        stopped = list(self.running.items())
        self.running.clear()
        if stopped:
            Event(self._event_name(), client=self.client).set()
            self.client.cancel([f for f, _ in stopped], force=True)
        self.epoch += 1
        for _, pending in stopped:
            pending.arm.running -= 1
        self.seen_on.clear()
        return stopped

    def _abandon(self, reason: str) -> None:
        """The search ends (deadline, cancel, limit): running trials are recorded as pruned
        with the reason, as a local trial cut short is."""
        for _, pending in self._stop_epoch():
            result = TrialResult(pending.number, pending.arm.spec.key, pending.params,
                                 "pruned", reason=reason,
                                 seconds=time.monotonic() - pending.started)
            self._tell(pending.arm, pending.trial, result)

    def _suspend(self) -> None:
        """A pause: stop the running trials and queue their configurations again, so they
        run after the resume (nothing is recorded for them)."""
        for _, pending in self._stop_epoch():
            pending.arm.study.tell(pending.trial, state=optuna.trial.TrialState.FAIL)
            pending.arm.study.enqueue_trial(pending.params)
        log.info("search paused: its running trials were stopped and re-queued")


def _problem(future: Any) -> str:
    """Why a future did not finish, in words: a worker lost under it (the scheduler gave up
    on the task: `KilledWorker`), or the error the task raised."""
    from distributed import KilledWorker

    try:
        exc = future.exception(timeout=1)
    except Exception as err:  # cancelled or lost: no exception to fetch
        return f"the trial was {future.status} on the Dask cluster ({type(err).__name__})"
    if isinstance(exc, KilledWorker):
        where = getattr(exc.last_worker, "address", "?")
        return lost_reason(where)
    if exc is None:  # e.g. cancelled by the scheduler: there is no error to show
        return f"the trial was {future.status} on the Dask cluster"
    return f"the trial failed on the Dask cluster: {type(exc).__name__}: {exc}"


def lost_reason(worker: str) -> str:
    return f"the Dask worker {worker} running this trial was lost; the search went on without it"
