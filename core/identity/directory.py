"""Who exists right now: a snapshot of the active users and keys, and an in-process cache of it.

The API checks every bearer token against this snapshot rather than querying the store per
request (docs/identity/auth.md, "Hot path"): the snapshot is at most `state_refresh_s` old, and
any change made in this process (`changed()`, called by users.py and keys.py after they
commit) makes it stale at once, so a removed user's token stops working on the next request
here and within `state_refresh_s` in every other process."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import threading
import time
from dataclasses import dataclass, field

from sqlmodel import Session, select

from core.identity.principal import Principal, PrincipalKind, Role
from core.store.identity import ApiKey, User

KEY_MARK = "wbk_"  # every API key starts with it, then its 12-character lookup prefix
PREFIX_LEN = 12

_generation = itertools.count(1)
_current_generation = 0


def changed() -> None:
    """Tell every cache in this process that users or keys changed (after the commit)."""
    global _current_generation
    _current_generation = next(_generation)


def generation() -> int:
    return _current_generation


def key_prefix(key: str) -> str | None:
    """The lookup prefix of something shaped like an API key, else None."""
    if key.startswith(KEY_MARK) and len(key) > len(KEY_MARK) + PREFIX_LEN + 1 \
            and key[len(KEY_MARK) + PREFIX_LEN] == "_":
        return key[len(KEY_MARK):len(KEY_MARK) + PREFIX_LEN]
    return None


def key_digest(key: str) -> str:
    """SHA-256 suffices for a key: it is 256 random bits, not a guessable password."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class UserEntry:
    role: Role
    workspace: str
    revision: int


@dataclass(frozen=True, slots=True)
class KeyEntry:
    name: str
    digest: str
    role: Role
    workspace: str


@dataclass(frozen=True)
class Snapshot:
    users: dict[str, UserEntry] = field(default_factory=dict)
    keys: dict[str, KeyEntry] = field(default_factory=dict)  # by prefix
    # Sign-in stays required once any user or key was ever created, even after the last one
    # is removed or revoked: removing people must never open the server to everyone.
    ever: bool = False
    # credentials already resolved against this snapshot (it is immutable, so the answer
    # stands until the next snapshot replaces it): the hot path's repeat callers pay one lookup
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def configured(self) -> bool:
        """Sign-in is required (else: single-user mode, the machine's operator)."""
        return bool(self.users or self.keys or self.ever)

    def user(self, name: str, revision: int) -> Principal | None:
        """The user `name` if it still exists at `revision` (removed, role or password
        changed: None)."""
        memo = self._memo.get((name, revision))
        if memo is not None:
            return memo
        entry = self.users.get(name)
        if entry is None or entry.revision != revision:
            return None
        return self._remember((name, revision), Principal(
            actor=name, role=entry.role, workspace=entry.workspace, kind=PrincipalKind.USER))

    def key(self, key: str) -> Principal | None:
        memo = self._memo.get(key)
        if memo is not None:
            return memo
        prefix = key_prefix(key)
        entry = self.keys.get(prefix) if prefix else None
        if entry is None or not hmac.compare_digest(entry.digest, key_digest(key)):
            return None
        return self._remember(key, Principal(actor=entry.name, role=entry.role,
                                             workspace=entry.workspace, kind=PrincipalKind.KEY))

    def _remember(self, cred: object, principal: Principal) -> Principal:
        if len(self._memo) >= 1024:
            self._memo.clear()
        self._memo[cred] = principal
        return principal


def load(session: Session) -> Snapshot:
    """Active users and unrevoked keys, from the store."""
    users = {u.name: UserEntry(Role(u.role), u.workspace, u.revision)
             for u in session.exec(select(User).where(User.removed_at.is_(None)))}
    keys = {k.prefix: KeyEntry(k.name, k.hash, Role(k.role), k.workspace)
            for k in session.exec(select(ApiKey).where(ApiKey.revoked_at.is_(None)))}
    ever = bool(users or keys) or session.exec(select(User.id).limit(1)).first() is not None \
        or session.exec(select(ApiKey.id).limit(1)).first() is not None
    return Snapshot(users, keys, ever)


class Directory:
    """The snapshot one process checks tokens against: `current()` costs a clock read and two
    comparisons; `refresh()` (blocking: call it off the event loop) reloads it when stale."""

    def __init__(self, db, refresh_s: float) -> None:
        self.db = db
        self.refresh_s = refresh_s
        self._snapshot: Snapshot | None = None
        self._loaded_at = 0.0
        self._generation = -1
        self._asked = False  # `current()` was called since the last load
        self._lock = threading.Lock()

    def current(self) -> Snapshot | None:
        """The snapshot if fresh enough to trust, else None (then call `refresh`)."""
        self._asked = True
        if self._generation != _current_generation \
                or time.monotonic() - self._loaded_at > self.refresh_s:
            return None
        return self._snapshot

    def last(self) -> Snapshot | None:
        """The last snapshot loaded, whatever its age; None if none yet or if this process
        changed users or keys since. What a public route (liveness) reads: it must never
        wait on the store."""
        return self._snapshot if self._generation == _current_generation else None

    def refresh(self) -> Snapshot:
        """Reload if stale (one thread reloads, the others wait for its result). A store
        that cannot be read raises (the caller answers 503)."""
        with self._lock:
            snap = self.current()
            return snap if snap is not None else self._load()

    def keep_fresh(self) -> None:
        """Reload once the snapshot is three quarters as old as it may be (the API's
        background loop calls this every quarter of `refresh_s`), so requests find a fresh
        one instead of each `refresh_s` one of them reloading it (a database read in a thread,
        behind the busy event loop for the GIL). Only while requests ask for it: an idle
        server does not query the store. Trust is unchanged: a snapshot older than
        `refresh_s` is still never used."""
        if not self._asked or (self._generation == _current_generation and
                               time.monotonic() - self._loaded_at < self.refresh_s * 0.75):
            return
        with self._lock:
            self._load()

    def _load(self) -> Snapshot:
        self._asked = False
        gen, started = _current_generation, time.monotonic()
        with Session(self.db.engine) as session:
            snap = load(session)
        self._snapshot, self._loaded_at, self._generation = snap, started, gen
        return snap
