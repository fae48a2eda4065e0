"""A change counter shared by every process using one store: each committed change to a
deployment row or a model alias (what a served rule is made of: candidate, percent, mode,
the production version) bumps it, and each serving process compares it with the generation
its cached rules were read at on every request. The comparison is one 8-byte read from a
shared memory map (O(1), no system call, the GIL kept), so a rollout step, a rollback or the
kill switch takes effect in every worker on this machine for the first request after the
change is acknowledged, however late a busy machine runs the periodic refresher.

The counter is a file beside a SQLite store (`workbench.db-deploygen`, like its `-wal`),
or `deploy.gen` in the home for another database. Servers on other machines (PostgreSQL)
do not share it: they see changes through the periodic refresh (`state_refresh_s`).

Writers need nothing but to have imported this module (core.deploy.deployments and the
serving runtime do): SQLAlchemy session events notice a flush that touches the watched
tables and bump the counter after the commit, so no caller can forget to."""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import threading
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from core.settings import get_settings
from core.store import Alias, Deployment

log = logging.getLogger("workbench.serving")
WATCHED = (Deployment, Alias)
_CHANGED = "workbench.deployment_changed"  # session.info flag: set at flush, used at commit
_SIZE = 8


class Generation:
    """One counter file mapped in memory (read by every request, bumped by writers)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        with self._locked():
            if os.fstat(self._fd).st_size < _SIZE:  # zeros: generation 0, written (not a
                os.pwrite(self._fd, bytes(_SIZE), 0)  # hole): a full disk fails here, not
                #                                       as SIGBUS on a later mapped write
        self._map = mmap.mmap(self._fd, _SIZE)
        self.view = memoryview(self._map).cast("Q")

    def _locked(self):
        return _FileLock(self._fd)

    def now(self) -> int:
        """The current generation (the request path: a memory read)."""
        return self.view[0]

    def bump(self) -> int:
        """One more (under an exclusive file lock: two writers never both write N + 1)."""
        with self._locked():
            value = self.view[0] + 1
            self.view[0] = value
        return value


class _FileLock:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)


_opened: dict[Path, Generation] = {}
_opened_lock = threading.Lock()


def path_of(url: str | URL) -> Path | None:
    """Where the counter of the store at `url` lives; None for an in-memory SQLite store."""
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database + "-deploygen").absolute()
    return get_settings().home.absolute() / "deploy.gen"


def of(url: str | URL) -> Generation | None:
    """The counter of the store at `url`, opened once per process; None when the store has
    none (in memory) or it cannot be made (then only the periodic refresh applies)."""
    path = path_of(url)
    if path is None:
        return None
    with _opened_lock:
        gen = _opened.get(path)
        if gen is None:
            try:
                gen = _opened[path] = Generation(path)
            except OSError as exc:
                log.warning("no deployment change counter at %s (%s): changes reach this "
                            "process by the periodic refresh only", path, exc)
                return None
        return gen


def view(url: str | URL) -> Sequence[int]:
    """The store's counter as a 1-item sequence (`view(url)[0]` is the generation now: an
    index, the request path's whole cost), or a constant (0,) when the store has none."""
    gen = of(url)
    return gen.view if gen is not None else (0,)


# -- the writer side: every session of the process --------------------------------------------
def _after_flush(session: Session, _context: object) -> None:
    if not session.info.get(_CHANGED) and any(
            isinstance(obj, WATCHED)
            for obj in chain(session.new, session.dirty, session.deleted)):
        session.info[_CHANGED] = True


def _after_commit(session: Session) -> None:
    if not session.info.pop(_CHANGED, False):
        return
    try:
        gen = of(session.get_bind().engine.url)
        if gen is not None:
            gen.bump()
    except Exception:  # the change is committed: the refresher still brings it
        log.exception("could not bump the deployment change counter")


# A rolled-back flush keeps the flag: at worst a later commit of that session bumps once more
# (one extra read per worker), never one change too few.
for _name, _fn in (("after_flush", _after_flush), ("after_commit", _after_commit)):
    if not event.contains(Session, _name, _fn):
        event.listen(Session, _name, _fn)
