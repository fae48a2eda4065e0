"""`workbench keygen` and `workbench rotate-key`: encryption at rest for artifacts
(docs/identity/encryption.md), and `workbench artifacts` to see where they are kept."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from app.cli_common import JsonOpt, database, emit_json, err, guarded, out, principal
from core.errors import InputError, SettingsError

commands = typer.Typer()


@commands.command()
@guarded
def keygen() -> None:
    """Print a new artifact key (32 random bytes, URL-safe base64) for WORKBENCH_ARTIFACT_KEY.
    Keep it like a password: artifacts written under it cannot be read without it."""
    from core.store.sealing import new_key_text

    out.print(new_key_text(), highlight=False, soft_wrap=True)


def _new_key(new_key_file: Path | None):
    from core.store.sealing import parse_key

    if new_key_file is not None:
        try:
            text, source = new_key_file.read_text(), f"--new-key-file {new_key_file}"
        except OSError as exc:
            raise InputError(f"--new-key-file {new_key_file} cannot be read "
                             f"({exc.strerror or exc}).") from None
    elif sys.stdin.isatty():
        raise InputError("Give the new key on stdin (e.g. `workbench keygen > new.key; "
                         "workbench rotate-key < new.key`) or with --new-key-file.")
    else:
        text, source = sys.stdin.read(), "the new key on stdin"
    try:
        return parse_key(text, source)
    except SettingsError as exc:
        raise InputError(exc.message) from None


@commands.command("rotate-key")
@guarded
def rotate_key(
    new_key_file: Annotated[Path | None, typer.Option(
        "--new-key-file", help="A file holding the new key (otherwise read from stdin).")
    ] = None,
    limit: Annotated[int | None, typer.Option(
        min=1, help="Rotate at most this many artifacts, then stop (run again to go on).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-encrypt every artifact under a new key, one artifact at a time, atomically; a
    version's identity (name, number, semver, fingerprint) and predictions never change.

    The old key comes from WORKBENCH_ARTIFACT_KEY (older ones from WORKBENCH_ARTIFACT_OLD_KEYS),
    the new one from stdin or --new-key-file. Killed or failed, run it again: what is already
    under the new key is skipped. When it reports nothing left, set WORKBENCH_ARTIFACT_KEY to
    the new key everywhere."""
    from core.store.rotation import rotate

    new = _new_key(new_key_file)
    # every workspace's artifacts: the key is the store's, not a workspace's (a scoped session
    # would leave the other workspaces under the old key and still report "done")
    with Session(database().engine, expire_on_commit=False) as s:
        report = rotate(new, session=s, actor=principal().actor, limit=limit,
                        progress=lambda label: err.print(f"rotated {label}", highlight=False))
    doc = {"key_id": report.key_id, "rotated": len(report.rotated), "already": report.already,
           "remaining": report.remaining, "failed": report.failed, "done": report.done}
    if json_out:
        emit_json(doc)
    else:
        out.print(f"{len(report.rotated)} artifact(s) re-encrypted under key {report.key_id}, "
                  f"{report.already} already under it, {report.remaining} left for the next "
                  f"run, {len(report.failed)} failed.", highlight=False, soft_wrap=True)
        for line in report.failed:
            err.print(f"[bold red]failed:[/] {line}", highlight=False, soft_wrap=True)
        if report.done:
            out.print("Done: set WORKBENCH_ARTIFACT_KEY to the new key on every server and "
                      "worker (and remove the old one from WORKBENCH_ARTIFACT_OLD_KEYS).",
                      highlight=False, soft_wrap=True)
    if report.failed:
        raise typer.Exit(1)


@commands.command()
@guarded
def artifacts(json_out: JsonOpt = False) -> None:
    """Where artifacts are kept, whether new ones are encrypted (and under which key), and the
    size of the local read cache."""
    from core.store import artifacts as store
    from core.store import readcache
    from core.store.sealing import write_key

    key = write_key()
    doc = {"location": store.location(), "remote": store.backend().remote,
           "encrypted": key is not None, "key_id": key.id if key else None,
           "cache_dir": str(readcache.cache_dir()), "cache_bytes": readcache.size_bytes()}
    if json_out:
        emit_json(doc)
        return
    out.print(f"artifacts: {doc['location']}\nnew artifacts: "
              f"{'encrypted under key ' + key.id if key else 'not encrypted'}\n"
              f"read cache: {doc['cache_dir']} ({doc['cache_bytes']} bytes)", highlight=False,
              soft_wrap=True)
