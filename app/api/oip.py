"""The Open Inference Protocol (KServe/Triton "V2", MLServer's pandas codec) over REST: its
typed messages, and the codec between them and the serving path's records.

Decoding maps an inference request onto the records `/v1/models/{name}/predict` takes, so a V2
call goes through the same routing, batching, lean path, telemetry and log; encoding maps the
answer onto output tensors `predict` and `predict_proba`. Every mistake in a request is an
`InputError` naming the input, the column and what to send instead (400 on the V2 routes)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, Field

from core.deploy.cache import LoadedModel
from core.deploy.columns import Columns, number_array
from core.deploy.service import Answer
from core.enums import Task
from core.errors import InputError

Parameters = dict[str, Any]
NUMBER_TYPES = frozenset({"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                          "INT32", "INT64", "FP16", "FP32", "FP64"})
DATATYPES = NUMBER_TYPES | {"BYTES"}
CONTENT_TYPES = (None, "pd", "np")  # request level: MLServer's pandas and numpy codecs
INPUT_CONTENT_TYPES = (None, "str", "np", "pd")  # per input: plain values only (no base64)
OUTPUTS = ("predict", "predict_proba")
MAX_ROWS = 100_000  # as POST /v1/models/{name}/predict
_PLAIN_NUMBERS = frozenset({int, float, bool, type(None)})
_TEXT = frozenset({str, type(None)})
NUMBER_ARRAY_MIN = 64  # values in a numeric input from which `number_array` costs less


# -- messages (field names as the protocol spells them) ---------------------------------------
class RequestInput(BaseModel):
    name: str = Field(min_length=1, max_length=300)
    shape: list[Annotated[int, Field(ge=0)]] = Field(min_length=1, max_length=8)
    datatype: str = Field(description="BOOL, INT8..INT64, UINT8..UINT64, FP16/FP32/FP64 or "
                                      "BYTES (strings)")
    parameters: Parameters | None = None
    data: list[Any] = Field(description="Row-major values, flat or nested as the shape.")


class RequestOutput(BaseModel):
    name: str = Field(description="predict or predict_proba")
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    id: str | None = Field(default=None, max_length=200)
    parameters: Parameters | None = Field(
        default=None, description='{"content_type": "pd"} (MLServer\'s pandas codec: each '
        'input is a column) and {"request_key": "..."} (sticky canary routing).')
    inputs: list[RequestInput] = Field(min_length=1, max_length=10_000)
    outputs: list[RequestOutput] | None = Field(
        default=None, description="Default: predict, and predict_proba for classifiers.")


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: Parameters | None = None


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] | None = None
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: Parameters | None = None


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class V2Error(BaseModel):
    """The protocol's error object: `{"error": "<code>: <what is wrong and what to do>"}`."""

    error: str


# -- a plainly valid request, without pydantic -------------------------------------------------
@dataclass(slots=True)
class PlainInput:
    """A `RequestInput` that needed no validation (read by the codec as the model is)."""

    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None
    data: list[Any]


@dataclass(slots=True)
class PlainOutput:
    name: str
    parameters: Parameters | None = None


@dataclass(slots=True)
class PlainRequest:
    """An `InferenceRequest` that needed no validation."""

    id: str | None
    parameters: Parameters | None
    inputs: list[PlainInput]
    outputs: list[PlainOutput] | None


Request = InferenceRequest | PlainRequest


def _bound(model: type[BaseModel], field: str, name: str) -> Any:
    """A declared bound (min_length, max_length, ...) of one field, from its metadata."""
    for meta in model.model_fields[field].metadata:
        if hasattr(meta, name):
            return getattr(meta, name)
    raise LookupError(f"{model.__name__}.{field} declares no {name}")


_REQUEST_KEYS = frozenset(InferenceRequest.model_fields)
_INPUT_KEYS = frozenset(RequestInput.model_fields)
_INPUT_NEEDS = frozenset(k for k, f in RequestInput.model_fields.items() if f.is_required())
_OUTPUT_KEYS = frozenset(RequestOutput.model_fields)
_ID_MAX = _bound(InferenceRequest, "id", "max_length")
_INPUTS = (_bound(InferenceRequest, "inputs", "min_length"),
           _bound(InferenceRequest, "inputs", "max_length"))
_NAME = (_bound(RequestInput, "name", "min_length"), _bound(RequestInput, "name", "max_length"))
_SHAPE = (_bound(RequestInput, "shape", "min_length"),
          _bound(RequestInput, "shape", "max_length"))
_PARAMS = frozenset({dict, type(None)})


def plain_request(doc: Any) -> PlainRequest | None:
    """The request, built without pydantic, when the parsed document is plainly valid (known
    keys of the right JSON types within the declared bounds); None otherwise, and pydantic then
    judges it and words the 400. Never accepts what `InferenceRequest` refuses."""
    if type(doc) is not dict or not _REQUEST_KEYS.issuperset(doc):
        return None
    rid, params, inputs, outputs = (doc.get("id"), doc.get("parameters"), doc.get("inputs"),
                                    doc.get("outputs"))
    if rid is not None and (type(rid) is not str or len(rid) > _ID_MAX):
        return None
    if type(params) not in _PARAMS or type(inputs) is not list \
            or not _INPUTS[0] <= len(inputs) <= _INPUTS[1]:
        return None
    plain_inputs = []
    for inp in inputs:
        if type(inp) is not dict or not _INPUT_KEYS.issuperset(inp) \
                or not _INPUT_NEEDS.issubset(inp):
            return None
        name, shape, datatype, data = inp["name"], inp["shape"], inp["datatype"], inp["data"]
        p = inp.get("parameters")
        if (type(name) is not str or not _NAME[0] <= len(name) <= _NAME[1]
                or type(shape) is not list or not _SHAPE[0] <= len(shape) <= _SHAPE[1]
                or not {int}.issuperset(map(type, shape)) or min(shape) < 0
                or type(datatype) is not str or type(p) not in _PARAMS
                or type(data) is not list):
            return None
        plain_inputs.append(PlainInput(name, shape, datatype, p, data))
    plain_outputs = None
    if outputs is not None:
        if type(outputs) is not list:
            return None
        plain_outputs = []
        for out in outputs:
            if type(out) is not dict or not _OUTPUT_KEYS.issuperset(out) \
                    or type(out.get("name")) is not str or type(out.get("parameters")) \
                    not in _PARAMS:
                return None
            plain_outputs.append(PlainOutput(out["name"], out.get("parameters")))
    return PlainRequest(rid, params, plain_inputs, plain_outputs)


# -- metadata ------------------------------------------------------------------------------
def column_datatype(column: dict[str, Any]) -> str:
    """The tensor datatype a schema column is sent as: by its dtype when that is a number or a
    boolean, by its kind otherwise (text, categories and dates are BYTES)."""
    dtype = str(column.get("dtype", "")).lower()
    if dtype.startswith("bool"):
        return "BOOL"
    if dtype.startswith(("int", "uint")):
        return "INT64"
    if dtype.startswith("float") or column.get("kind") == "numeric":
        return "FP64"
    return "BYTES"


def input_datatypes(lm: LoadedModel) -> dict[str, str]:
    """Column → datatype for the columns a caller sends, in schema order (worked out once
    per loaded version: every request reads it)."""
    known = lm.memo.get("v2_datatypes")
    if known is None:
        schema = {c["name"]: c for c in lm.mv.input_schema or []}
        known = lm.memo["v2_datatypes"] = {c: column_datatype(schema.get(c, {}))
                                           for c in lm.columns}
    return known


def is_classifier(lm: LoadedModel) -> bool:
    return lm.mv.task != Task.REGRESSION


def metadata(lm: LoadedModel, versions: list[str] | None) -> ModelMetadata:
    inputs = [MetadataTensor(name=c, datatype=t, shape=[-1, 1])
              for c, t in input_datatypes(lm).items()]
    outputs = [MetadataTensor(name="predict", datatype=_label_type(lm.classes or [])
                              if lm.classes is not None else "FP64", shape=[-1])]
    if lm.classes is not None:
        outputs.append(MetadataTensor(name="predict_proba", datatype="FP64",
                                      shape=[-1, len(lm.classes)],
                                      parameters={"classes": lm.classes}))
    return ModelMetadata(name=lm.name, versions=versions, platform="sklearn", inputs=inputs,
                         outputs=outputs, parameters={"version": str(lm.version),
                                                      "task": str(lm.mv.task)})


# -- decoding ------------------------------------------------------------------------------
def request_key(req: Request, header: str | None) -> str | None:
    key = (req.parameters or {}).get("request_key", header)
    if key is not None and not isinstance(key, str | int):
        raise InputError('parameters.request_key must be a string (e.g. a user id), not '
                         f'{type(key).__name__}.')
    return None if key is None else str(key)


def requested_outputs(req: Request, lm: LoadedModel) -> list[str]:
    """The outputs to answer with, checked before scoring (a refusal costs no prediction)."""
    if not req.outputs:
        return list(OUTPUTS) if is_classifier(lm) else ["predict"]
    names = [o.name for o in req.outputs]
    offered = OUTPUTS if is_classifier(lm) else ("predict",)
    unknown = [n for n in names if n not in offered]
    if unknown:
        raise InputError(f"Unknown output {', '.join(map(repr, unknown))}: {lm.name} gives "
                         f"{', '.join(offered)}"
                         + (" (a regressor has no predict_proba)." if not is_classifier(lm)
                            else "."))
    return list(dict.fromkeys(names))


def records(req: Request, lm: LoadedModel, known: set[str] | None = None) -> Columns:
    """The request's rows, held as the columns they were sent as (read as records keyed by
    column where records are needed; the lean path takes the columns as they are). `lm` is
    the version whose schema checks the inputs (the stable one, or the pinned one); `known`
    adds columns another version that may answer (a canary's candidate) takes."""
    content_type = (req.parameters or {}).get("content_type")
    if content_type not in CONTENT_TYPES:
        raise InputError(f"parameters.content_type {content_type!r} is not supported: use "
                         '"pd" (each input is a column) or leave it out.')
    tensors = [(inp, *_values(inp)) for inp in req.inputs]
    first = req.inputs[0]
    if content_type != "pd" and len(req.inputs) == 1 and first.name not in lm.columns \
            and len(first.shape) == 2:
        return _matrix_records(first, tensors[0][1], tensors[0][2], lm)
    return _column_records(tensors, lm, known or set())


def _values(inp: RequestInput | PlainInput) -> tuple[list[Any], np.ndarray | None]:
    """The input's values (flattened) and, for a numeric input of `NUMBER_ARRAY_MIN` values
    or more that are all plain numbers, their float64 array (`Columns.numbers`)."""
    if inp.datatype not in DATATYPES:
        raise InputError(f"Input {inp.name!r} has datatype {inp.datatype!r}: use one of BOOL, "
                         "INT8..INT64, UINT8..UINT64, FP16, FP32, FP64 or BYTES.")
    ct = (inp.parameters or {}).get("content_type")
    if ct not in INPUT_CONTENT_TYPES:
        raise InputError(f"Input {inp.name!r} has content_type {ct!r}: send plain values "
                         "(strings as BYTES, content_type \"str\" or none).")
    data = inp.data
    while data and isinstance(data[0], list):  # nested as the shape: flatten row-major
        data = [x for row in data for x in (row if isinstance(row, list) else [row])]
    expected = math.prod(inp.shape)
    if len(data) != expected:
        raise InputError(f"Input {inp.name!r} has shape {inp.shape} ({expected} values) but "
                         f"{len(data)} values in data: make the shape match the data.")
    if inp.datatype == "BYTES":
        if not _TEXT.issuperset(map(type, data)):
            raise InputError(f"Input {inp.name!r} is BYTES but holds "
                             f"{_first_other(data, _TEXT)!r}: BYTES data are strings; send "
                             "numbers as FP64 or INT64.")
        return data, None
    # many values: checked and converted in one numpy call (for a few, a type check costs less)
    numbers = number_array(data) if len(data) >= NUMBER_ARRAY_MIN else None
    if numbers is None and not _PLAIN_NUMBERS.issuperset(map(type, data)):
        raise InputError(f"Input {inp.name!r} is {inp.datatype} but holds "
                         f"{_first_other(data, _PLAIN_NUMBERS)!r}: send numbers, or send the "
                         "column as BYTES if it holds text.")
    return data, numbers


def _first_other(data: list[Any], allowed: frozenset[type]) -> Any:
    return next(x for x in data if type(x) not in allowed)


def _matrix_records(inp: RequestInput | PlainInput, data: list[Any],
                    numbers: np.ndarray | None, lm: LoadedModel) -> Columns:
    columns = lm.columns
    n_rows, width = inp.shape
    order = ", ".join(columns)
    if inp.datatype == "BYTES":
        raise InputError(f"Input {inp.name!r} is a 2-D BYTES tensor: a 2-D input holds numbers "
                         f"(FP32/FP64) for the columns {order}; send text columns as their own "
                         "BYTES tensors named as the column.")
    text = [c for c, num in zip(columns, lm.numeric, strict=True) if not num]
    if text:
        raise InputError(f"Input {inp.name!r} is one 2-D tensor, but {lm.label} has columns "
                         f"that are not numbers: {', '.join(map(repr, text))}. Send one tensor "
                         "per column instead (named as the column, shape [N]), those as BYTES.")
    if width != len(columns):
        raise InputError(f"Input {inp.name!r} has shape {inp.shape}: a 2-D input is "
                         f"[N, {len(columns)}], the columns in schema order: {order}.")
    _check_rows(n_rows)
    matrix = None if numbers is None else numbers.reshape(n_rows, width)
    return Columns(list(columns), [data[j::width] for j in range(width)], n_rows,
                   None if matrix is None else {c: matrix[:, j] for j, c in enumerate(columns)})


def _column_records(tensors: list[tuple[RequestInput | PlainInput, list[Any],
                                        np.ndarray | None]],
                    lm: LoadedModel, known: set[str]) -> Columns:
    datatypes = input_datatypes(lm)
    names = [inp.name for inp, _, _ in tensors]
    unknown = [n for n in names if n not in datatypes and n not in known]
    if unknown:
        raise InputError(f"Unknown input {', '.join(map(repr, unknown))}: {lm.label} takes one "
                         f"tensor per column: {', '.join(lm.columns)}"
                         + (" (or one 2-D FP64 tensor [N, "
                            f"{len(lm.columns)}] in that order)." if all(lm.numeric) else "."))
    duplicated = [] if len(set(names)) == len(names) else \
        sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InputError(f"Input {', '.join(map(repr, duplicated))} is sent more than once.")
    missing = [c for c in lm.columns if c not in names]
    if missing:
        raise InputError(f"Columns the model was trained on have no input tensor: "
                         f"{', '.join(map(repr, missing))}. Add one per column (shape [N], "
                         f"datatype {', '.join(datatypes[c] for c in missing)}; null values "
                         "are allowed).")
    rows = None
    for inp, _, _ in tensors:
        shape = inp.shape
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise InputError(f"Input {inp.name!r} has shape {shape}: a column's tensor is [N] "
                             "or [N, 1].")
        if rows is None:
            rows = shape[0]
        elif shape[0] != rows:
            raise InputError(f"Inputs have different row counts ({rows} and {shape[0]} for "
                             f"{inp.name!r}): every column's tensor has the same N.")
        want = datatypes.get(inp.name)
        if want is not None and (want == "BYTES") != (inp.datatype == "BYTES"):
            raise InputError(f"Input {inp.name!r} is {inp.datatype} but column {inp.name!r} "
                             f"holds {'text' if want == 'BYTES' else 'numbers'}: send it as "
                             f"{want}.")
    _check_rows(rows or 0)
    return Columns(names, [d for _, d, _ in tensors], rows or 0,
                   {inp.name: a for inp, _, a in tensors if a is not None})


def _check_rows(n: int) -> None:
    if n == 0:
        raise InputError("The inputs hold no rows: send at least one (shape [N] with N >= 1).")
    if n > MAX_ROWS:
        raise InputError(f"{n} rows in one request: send at most {MAX_ROWS} per request.")


# -- encoding ------------------------------------------------------------------------------
def _label_type(values: list[Any]) -> str:
    kinds = set(map(type, values))
    if kinds <= {bool}:
        return "BOOL" if kinds else "BYTES"
    if kinds <= {int}:
        return "INT64"
    if kinds <= {int, float}:
        return "FP64"
    return "BYTES"


def response(a: Answer, wanted: list[str], request_id: str | None) -> dict[str, Any]:
    """The inference response as a plain dict (written by orjson, see app/api/wire.py)."""
    n = len(a.predictions)
    outputs: list[dict[str, Any]] = []
    for name in wanted:
        if name == "predict":
            preds = a.predictions
            kind = "FP64" if a.classes is None else _label_type(a.classes)
            if kind == "BYTES":
                preds = [str(p) for p in preds]
            outputs.append({"name": "predict", "datatype": kind, "shape": [n], "data": preds})
        elif a.proba is not None:
            outputs.append({"name": "predict_proba", "datatype": "FP64",
                            "shape": [n, len(a.classes or [])],
                            "parameters": {"classes": a.classes},
                            "data": a.proba.ravel().tolist()})
    return {"model_name": a.model, "model_version": str(a.version),
            "id": request_id or a.request_id, "parameters": {"request_id": a.request_id},
            "outputs": outputs}
