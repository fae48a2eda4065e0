"""The serving runtime as one workspace sees it: every model name a route hands it is
qualified with the caller's workspace (`core.store.scope.ModelKey`) before it reaches the
shared caches, routing, telemetry and guard rails, so two workspaces each serving a "churn"
never share a rule, a loaded model, a counter or a log row.

One view per workspace, made once and kept (`Serving.view`): a request pays one dict lookup
keyed by the workspace and no database query."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.store.scope import ModelKey, model_key

if TYPE_CHECKING:
    from core.deploy.cache import LoadedModel, ModelCache
    from core.deploy.public import DeploymentState
    from core.deploy.service import Answer, Serving
    from core.deploy.states import DeploymentStates
    from core.store.shapes import Record


class _Qualified:
    def __init__(self, workspace: str) -> None:
        self.workspace = workspace

    def _k(self, name: str) -> ModelKey:
        if isinstance(name, ModelKey) and name.workspace == self.workspace:
            return name
        return model_key(self.workspace, str(name))


class _Failed(_Qualified):
    """`cache.failed` of one workspace: {(name, version): why}."""

    def __init__(self, failed: dict, workspace: str) -> None:
        super().__init__(workspace)
        self._failed = failed

    def get(self, key: tuple[str, int], default: Any = None) -> Any:
        return self._failed.get((self._k(key[0]), key[1]), default)


class CacheView(_Qualified):
    def __init__(self, cache: ModelCache, workspace: str) -> None:
        super().__init__(workspace)
        self._cache = cache
        self.failed = _Failed(cache.failed, workspace)

    @property
    def size(self) -> int:
        return self._cache.size

    def hit(self, name: str, version: int) -> LoadedModel | None:
        return self._cache.hit(self._k(name), version)

    def peek(self, name: str, version: int) -> LoadedModel | None:
        return self._cache.peek(self._k(name), version)

    def get(self, name: str, version: int) -> LoadedModel:
        return self._cache.get(self._k(name), version)

    def unload(self, name: str, version: int | None = None) -> list[int]:
        return self._cache.unload(self._k(name), version)

    def loaded_models(self, name: str) -> list[LoadedModel]:
        return self._cache.loaded_models(self._k(name))

    def loaded(self) -> list[str]:
        """This workspace's loaded versions only."""
        return [f"{m.name}:{m.version}" for m in self._cache.held()
                if getattr(m.name, "workspace", None) == self.workspace]


class StatesView(_Qualified):
    def __init__(self, states: DeploymentStates, workspace: str) -> None:
        super().__init__(workspace)
        self._states = states

    def deployed(self) -> list[str]:
        return self._states.deployed(self.workspace)

    def names(self) -> list[str]:
        return [n for n in self._states.names()
                if getattr(n, "workspace", None) == self.workspace]

    def peek(self, name: str) -> DeploymentState | None:
        return self._states.peek(self._k(name))

    def get(self, name: str, *, fresh: bool = False) -> DeploymentState:
        return self._states.get(self._k(name), fresh=fresh)

    async def aget(self, name: str) -> DeploymentState:
        return await self._states.aget(self._k(name))

    def forget(self, name: str) -> None:
        self._states.forget(self._k(name))


class WorkspaceServing(_Qualified):
    """What the routes call (the `Serving` facade's methods), for one workspace; anything
    else (settings, metrics, loops) is the shared runtime's."""

    def __init__(self, serving: Serving, workspace: str) -> None:
        super().__init__(workspace)
        self._serving = serving
        self.db = serving.db.in_workspace(workspace)
        self.cache = CacheView(serving.cache, workspace)
        self.states = StatesView(serving.states, workspace)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._serving, name)

    async def predict(self, name: str, records: list[Record], key: str | None = None,
                      version: int | None = None) -> Answer:
        return await self._serving.predict(self._k(name), records, key, version)

    def state(self, name: str, *, fresh: bool = False) -> DeploymentState:
        return self._serving.state(self._k(name), fresh=fresh)

    async def astate(self, name: str) -> DeploymentState:
        return await self._serving.astate(self._k(name))

    def forget(self, name: str) -> None:
        self._serving.forget(self._k(name))

    def warm(self, name: str, version: int) -> LoadedModel:
        return self._serving.warm(self._k(name), version)

    def use_runtimes(self, st: DeploymentState) -> None:
        self._serving.use_runtimes(st.model_copy(update={"name": self._k(st.name)}))

    model = warm

    async def amodel(self, name: str, version: int) -> LoadedModel:
        return await self._serving.amodel(self._k(name), version)

    async def default_model(self) -> str:
        return await self._serving.states.default_model(self._serving.settings.default_model,
                                                        self.workspace)
