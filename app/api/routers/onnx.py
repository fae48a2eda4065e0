"""ONNX download of a registered version: GET /v1/models/{name}/versions/{version}/onnx.

The graph is handed out only after its parity check passed (core.onnx.export); the check's
result travels in headers and is stored with the version (GET /v1/models/{name} shows it as
`onnx_parity`). A step without a converter or a failed parity is a 409 naming the step or the
differences."""

from __future__ import annotations

import json

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import PrincipalDep, SessionDep
from app.api.errors import ERRORS
from core.onnx.export import export_onnx
from core.registry import check_model_name

router = APIRouter(tags=["models"])
MEDIA_TYPE = "application/octet-stream"


@router.get("/v1/models/{name}/versions/{version}/onnx", response_class=Response,
            responses={**ERRORS, 200: {"content": {MEDIA_TYPE: {}},
                                       "description": "The ONNX model's bytes."}})
async def onnx_download(name: str, version: int, session: SessionDep,
                        principal: PrincipalDep) -> Response:
    """The version as one ONNX graph (inputs: one per column, named as the column, [N, 1];
    outputs: label then probabilities, or variable). Converting takes seconds: off the
    event loop."""
    check_model_name(name)
    result = await run_in_threadpool(export_onnx, f"{name}:{version}", session=session,
                                     actor=principal.actor)
    parity = result.parity
    headers = {"Content-Disposition": f'attachment; filename="{name}-{version}.onnx"',
               "X-Content-Type-Options": "nosniff",
               "X-Onnx-Parity": json.dumps({k: parity.get(k) for k in
                                            ("passed", "max_abs_diff", "rows")})}
    return Response(result.data, media_type=MEDIA_TYPE, headers=headers)
