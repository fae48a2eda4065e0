"""`workbench export NAME[:VERSION] --format onnx --out model.onnx`: a version as one ONNX
graph any ONNX runtime can call, written only after its parity check passed (the check's
result is stored with the version either way). Same contract as app/cli.py: exit 2 with a
one-paragraph message on a refusal (a step without a converter, parity failed, the `onnx`
extra missing), `--json` prints one JSON document."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli_common import JsonOpt, emit_json, guarded, out, session
from core.errors import InputError

commands = typer.Typer()
FORMATS = ("onnx",)


@commands.command()
@guarded
def export(
    model_ref: Annotated[str, typer.Argument(
        help="NAME, NAME@ALIAS, NAME:VERSION or NAME@v1.2.0.")],
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the model.")],
    fmt: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    json_out: JsonOpt = False,
) -> None:
    """Export a version as ONNX: one input per input column (named as the column, [N, 1],
    float32 for numbers, string for the rest), outputs label then probabilities (or
    variable for a regressor). Written only if onnxruntime reproduces the pipeline."""
    from core.fsutil import atomic_write
    from core.onnx.export import export_onnx

    if fmt not in FORMATS:
        raise InputError(f"Unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}.")
    with session() as s:
        result = export_onnx(model_ref, session=s)
    atomic_write(out_path, result.data)
    parity = result.parity
    if json_out:
        emit_json({"model": result.name, "version": result.version, "path": str(out_path),
                   "size_bytes": len(result.data), "parity": parity})
        return
    out.print(f"Wrote {result.name}:{result.version} as ONNX to {out_path} "
              f"({len(result.data)} bytes)")
    if parity.get("rows"):
        out.print(f"parity passed on {parity['rows']} rows ({parity['rows_from']}): max "
                  f"difference {parity['max_abs_diff']:.2g}")
