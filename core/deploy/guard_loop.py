"""The guard-rail loop of one serving process: judge every running canary it serves on the
telemetry of all workers since the canary's step began, and act on the verdict (roll back,
advance a step, promote). One model's failure (rails that are not valid, a database error on
its row) is logged and raised as a GUARD alert once, and the loop carries on with the others.

Several workers may judge the same canary: each action names the candidate it judged
(`expect_candidate`), so a second worker's identical action is a ConflictError, skipped."""

from __future__ import annotations

import logging
from typing import Any

from core.deploy import deployments as dep
from core.deploy import guard_alert
from core.deploy.enums import DeploymentMode, GuardAction
from core.deploy.guards import Verdict, judge
from core.deploy.states import DeploymentStates
from core.deploy.telemetry import stats_since
from core.errors import ConflictError, NotFoundError, WorkbenchError
from core.store import utcnow
from core.store.db import Database
from core.store.scope import workspace_of_key

log = logging.getLogger("workbench.serving")
GUARD_ACTOR = "guard-rails"


class GuardLoop:
    def __init__(self, db: Database, states: DeploymentStates) -> None:
        self.db = db
        self.states = states
        self.log: list[dict[str, Any]] = []  # what the rails did in this process
        self._errors: dict[str, str] = {}  # model → last failure alerted
        self._judged: set[str] = set()  # models whose rails judged in this process

    def check(self) -> list[Verdict]:
        """Judge every model this process knows about; the verdicts acted on."""
        acted = []
        for name in self.states.names():
            try:
                verdict = self._guard(name)
            except Exception as exc:
                self._failed(name, exc)
                continue
            if verdict is not None:
                acted.append(verdict)
        return acted

    def _guard(self, name: str) -> Verdict | None:
        try:
            st = self.states.read(name)
        except NotFoundError:
            self.states.forget(name)
            return None
        if st.candidate is None or not DeploymentMode(st.mode).answers:
            self._ok(name)
            return None
        with self.db.session(workspace=workspace_of_key(name)) as session:
            stats = stats_since(name, st.candidate, st.step_started_at, session=session)
        verdict = judge(st, stats)
        self._ok(name)
        if verdict.action == GuardAction.HOLD:
            return None
        kw = {"actor": GUARD_ACTOR, "reason": verdict.reason,
              "expect_candidate": st.candidate, "metrics": verdict.metrics or {}}
        try:
            # each action commits its own change
            with self.db.session(workspace=workspace_of_key(name)) as session:
                if verdict.action == GuardAction.ROLLBACK:
                    dep.rollback(name, automatic=True, session=session, **kw)
                elif verdict.action == GuardAction.ADVANCE:
                    dep.set_percent(name, verdict.percent or 100.0, session=session, **kw)
                else:
                    dep.promote(name, session=session, **kw)
        except ConflictError as exc:  # another worker or a person acted first
            log.info("guard rail %s on %s skipped: %s", verdict.action, name, exc)
            return None
        self.states.forget(name)
        self.log.append({"model": name, "action": verdict.action, "reason": verdict.reason,
                         "at": utcnow().isoformat()})
        return verdict

    def _failed(self, name: str, exc: Exception) -> None:
        """Log and alert once per distinct failure (the loop ticks every second)."""
        message = exc.message if isinstance(exc, WorkbenchError) else \
            f"{type(exc).__name__}: {exc}"
        cached = self.states.cached(name)
        version = cached.candidate if cached else None
        text = (f"The guard rails of {name!r} could not judge its canary "
                f"({name}:{version}), so it has no automatic rollback: {message} Fix the "
                f"rails (deploy the candidate again with valid guard_rails) or roll it back.")
        if self._errors.get(name) == text:
            log.debug("guard rails of %s still cannot run: %s", name, message)
            return
        log.error("guard rails of %s could not run", name, exc_info=exc)
        self._errors[name] = text
        self.log.append({"model": name, "action": "error", "reason": message,
                         "at": utcnow().isoformat()})
        try:
            with self.db.session(workspace=workspace_of_key(name)) as session:
                guard_alert.report(name, version, text, session=session)
        except Exception:
            log.exception("could not raise the guard-rail alert of %s", name)

    def _ok(self, name: str) -> None:
        # the first good judgement in this process also clears a GUARD alert an earlier
        # process (before a restart) left open
        if self._errors.pop(name, None) is not None or name not in self._judged:
            with self.db.session(workspace=workspace_of_key(name)) as session:
                guard_alert.clear(name, session=session)
            self._judged.add(name)
