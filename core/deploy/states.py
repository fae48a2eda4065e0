"""The deployment-state cache of one serving process: each served model's rule (stable,
candidate, percent, mode), so a request never waits on the database for it once it is known.

A cached rule is used only while the store's change counter (core/deploy/generation.py) still
has the value it had when the rule was read: every committed deployment or alias change bumps
it, so the first request after a change (made by any process on this machine) reads the rule
again instead of being routed by the old one. That check is one memory read per request. The
periodic refresher (`refresh_s`) stays for what the counter cannot see (a server on another
machine of a PostgreSQL store) and to warm a new candidate before it takes traffic.

Why not only the refresher: on a busy machine its thread runs late (0.3-0.5 s stale answers
measured, seconds after a worker's start: docs/serving/flake-s10.md), and requests then took
the cached rule whatever its age.

A miss (a model's first request, a change, or a stale rule when no refresher runs) is read
in a thread, never on the event loop; concurrent misses of one model at one generation share
one read."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from core.deploy import generation
from core.deploy.deployments import get_state
from core.deploy.public import DeploymentState
from core.errors import NotFoundError
from core.registry import PRODUCTION, list_models
from core.store.db import Database
from core.store.scope import DEFAULT_WORKSPACE, ModelKey, model_key, workspace_of_key

log = logging.getLogger("workbench.serving")
DEFAULT_MODEL_TTL_S = 1.0
T = TypeVar("T")


class DeploymentStates:
    """`peek` (the request path, no I/O), `get` (a thread's read, fresh if asked), `aget`
    (the event loop's: a miss goes to a thread). `on_read(state)` hears every state read
    (the runtime warms a candidate that is not loaded yet)."""

    def __init__(self, db: Database, refresh_s: float,
                 on_read: Callable[[DeploymentState], None] | None = None) -> None:
        self.db = db
        self.refresh_s = refresh_s
        self.on_read = on_read
        # True while a refresher keeps every known state fresh: a request then takes the
        # cached one whatever its age
        self.kept_fresh = False
        # the store's change counter as a 1-item sequence (a shared memory view), opened by
        # the first read: nothing is created before the server reads a rule
        self._gen: Sequence[int] | None = None
        # name -> (rule, read at (monotonic), the generation before it was read)
        self._states: dict[str, tuple[DeploymentState, float, int]] = {}
        self._reads: dict[str, tuple[int, asyncio.Future]] = {}
        # workspace -> (its default model, looked up at (monotonic), the generation before)
        self._default: dict[str, tuple[str | None, float, int]] = {}
        self._default_reads: dict[str, tuple[int, asyncio.Future]] = {}

    def generation(self) -> int:
        """The store's change counter now (0 for a store without one, e.g. in memory)."""
        if self._gen is None:
            self._gen = generation.view(self.db.url)
        return self._gen[0]

    def names(self) -> list[str]:
        """The models this process has served or been asked about, in first-seen order."""
        return list(self._states)

    def peek(self, name: str) -> DeploymentState | None:
        """The cached rule if no change was committed since it was read and it is fresh
        enough, else None (no I/O: the request path)."""
        cached = self._states.get(name)
        # a cached rule implies a read, so the counter is open (indexed here, not called:
        # this is every request's cost)
        if cached is not None and cached[2] == self._gen[0] and (  # type: ignore[index]
                self.kept_fresh or time.monotonic() - cached[1] < self.refresh_s):
            return cached[0]
        return None

    def cached(self, name: str) -> DeploymentState | None:
        """The last rule read, whatever its age (for messages about it)."""
        cached = self._states.get(name)
        return cached[0] if cached else None

    def read(self, name: str) -> DeploymentState:
        """The rule from the database now (blocking: call from a thread). The generation is
        taken first: a change committed during the read makes the rule stale at once."""
        gen = self.generation()
        with self.db.session(workspace=workspace_of_key(name)) as session:
            st = get_state(name, session=session)
        if isinstance(name, ModelKey):
            st.name = name  # routing and the caches key on it: keep the workspace
        self._states[name] = (st, time.monotonic(), gen)
        if self.on_read is not None:
            self.on_read(st)
        return st

    def get(self, name: str, *, fresh: bool = False) -> DeploymentState:
        if not fresh:
            st = self.peek(name)
            if st is not None:
                return st
        return self.read(name)

    async def aget(self, name: str) -> DeploymentState:
        st = self.peek(name)
        if st is not None:
            return st
        return await self._shared(self._reads, name, self.read, name)

    async def _shared(self, reads: dict[str, tuple[int, asyncio.Future]], key: str,
                      read: Callable[..., T], *args: object) -> T:
        """`read(*args)` in a thread, one at a time per key and generation: concurrent misses
        (32 requests when a cached answer expires) wait for the same read instead of each
        starting one. A read started before the latest change may return the old answer: it
        is not joined."""
        loop = asyncio.get_running_loop()
        gen = self.generation()
        gen_read, future = reads.get(key, (None, None))
        if future is None or gen_read != gen or future.get_loop() is not loop:
            future = loop.run_in_executor(None, read, *args)
            reads[key] = (gen, future)
            future.add_done_callback(lambda done: self._drop_read(reads, key, done))
        return await asyncio.shield(future)

    @staticmethod
    def _drop_read(reads: dict[str, tuple[int, asyncio.Future]], key: str,
                   done: asyncio.Future) -> None:
        if reads.get(key, (None, None))[1] is done:
            del reads[key]

    def forget(self, name: str) -> None:
        self._states.pop(name, None)

    def refresh_all(self) -> None:
        """Read every known rule again (the refresher's pass); a model gone is forgotten, one
        model's failure does not stop the others."""
        for name in self.names():
            try:
                self.read(name)
            except NotFoundError:
                self.forget(name)
            except Exception:
                log.exception("could not refresh the deployment of %s", name)

    def deployed(self, workspace: str = DEFAULT_WORKSPACE) -> list[str]:
        """Models of `workspace` with a production version (blocking: call from a thread)."""
        with self.db.session(workspace=workspace) as session:
            return [model_key(workspace, m.name) for m in list_models(session=session)
                    if PRODUCTION in m.aliases]

    async def default_model(self, configured: str | None,
                            workspace: str = DEFAULT_WORKSPACE) -> str:
        """The model `/invocations` scores in `workspace`: the configured one, else the only
        deployed model. Looked up in a thread (this is on the request path), again after any
        deployment or alias change and at most once a second otherwise (servers on other
        machines change the store unseen); concurrent requests share one lookup."""
        if configured:
            return model_key(workspace, configured)
        gen = self.generation()
        name, at, gen_at = self._default.get(workspace, (None, 0.0, -1))
        now = time.monotonic()
        if name and gen_at == gen and now - at < DEFAULT_MODEL_TTL_S:
            return name
        deployed = await self._shared(self._default_reads, workspace, self.deployed, workspace)
        if len(deployed) == 1:
            self._default[workspace] = (deployed[0], now, gen)
            return deployed[0]
        raise NotFoundError("/invocations needs a default model: set WORKBENCH_DEFAULT_MODEL "
                            "or use /v1/models/{name}/invocations "
                            f"({len(deployed)} models are deployed).")
