"""`workbench scorecard NAME`: live scores per version from labelled feedback and the A/B
verdict of the current candidate; the same document as `GET /v1/models/{name}/scorecard`
(`--json` prints it). Registered onto the main CLI by `app.cli` (`app.add_typer(commands)`).

The CLI reads the store directly: predictions a running server answered in the last second
may still sit in its buffer (the API's route flushes it first)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from app.cli_common import JsonOpt, emit_json, guarded, out, session, table

if TYPE_CHECKING:
    from core.deploy.verdict import Verdict

commands = typer.Typer()


def verdict_lines(v: Verdict) -> list[str]:
    """The verdict as the CLI prints it: the sentence, then how it was reached."""
    lines = [v.message]
    counted = (f"labels since {v.since:%Y-%m-%d %H:%M} UTC" if v.since
               else "all labelled predictions")
    lines.append(f"  {v.mode} of version {v.candidate} against stable {v.stable}; "
                 f"{counted}; labelled: stable {v.stable_labelled}, candidate "
                 f"{v.candidate_labelled}; method: {v.method}.")
    return lines


@commands.command()
@guarded
def scorecard(name: str, json_out: JsonOpt = False) -> None:
    """Accuracy (or MAE) per version on labelled predictions, and which of stable and its
    candidate is better, with a 95 % confidence interval on the difference (or how many
    more labels are needed)."""
    from core.deploy.feedback import model_scorecard

    with session() as s:
        card = model_scorecard(name, session=s)
    if json_out:
        emit_json(card.model_dump(mode="json"))
        return
    m = card.measure
    out.print(table(f"{name}: {m} on labelled predictions",
                    [v.model_dump() for v in card.versions], ["version", "labelled", m]))
    if card.shadow:
        out.print(table("stable against its shadow, on the same requests",
                        [r.model_dump() for r in card.shadow],
                        ["stable", "candidate", "labelled", f"stable_{m}", f"candidate_{m}",
                         "agreement"]))
    if card.verdict is None:
        out.print("No candidate deployed: no A/B verdict. Deploy one with "
                  f"`workbench deploy {name} VERSION` (add --shadow to compare on a copy).")
        return
    for line in verdict_lines(card.verdict):
        out.print(line, highlight=False, soft_wrap=True)
