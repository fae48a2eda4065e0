"""Hostile and careless bodies on POST /v2/models/{name}/infer get the protocol's
`{"error": "..."}` with a 4xx, never a 500 (review s9): numbers no float holds, text that is
not UTF-8 (a lone surrogate escape), wrongly typed parameters, shapes that do not match the
data, nesting deeper than any table."""

from __future__ import annotations

from tests.app.test_api_v2 import client, v2_home  # noqa: F401  (the fixtures)


def _body(a, b=None, **extra) -> dict:
    b = [0.5] if b is None else b
    return {"inputs": [{"name": "a", "datatype": "FP64", "shape": [len(a)], "data": a},
                       {"name": "b", "datatype": "FP64", "shape": [len(b)], "data": b}],
            **extra}


def _raw(text: str) -> bytes:
    return text.encode()


HOSTILE = {
    "int beyond float": _body([10**400]),
    "float overflow": _raw('{"inputs": [{"name": "a", "datatype": "FP64", "shape": [1], '
                           '"data": [1e400]}, {"name": "b", "datatype": "FP64", '
                           '"shape": [1], "data": [0.5]}]}'),
    "parameters a list": _body([0.5], parameters=[1]),
    "content_type a list": _body([0.5], parameters={"content_type": ["pd"]}),
    "request_key a dict": _body([0.5], parameters={"request_key": {"a": 1}}),
    "shape of 2**70": {"inputs": [{"name": "a", "datatype": "FP64", "shape": [2**70],
                                   "data": [0.5]}]},
    "mismatched lengths": _body([0.5, 0.6], [0.5]),
    "ragged nesting": _body([[0.5], [[0.6]]]),
    "deep nesting": _raw('{"inputs": [{"name": "a", "datatype": "FP64", "shape": [1], '
                         '"data": ' + "[" * 3000 + "0.5" + "]" * 3000 + "}]}"),
    "lone surrogate in a number column": _raw(
        '{"inputs": [{"name": "a", "datatype": "BYTES", "shape": [1], "data": ["\\ud800"]},'
        ' {"name": "b", "datatype": "FP64", "shape": [1], "data": [0.5]}]}'),
    "datatype a number": _body([0.5]) | {"inputs": [{"name": "a", "datatype": 5,
                                                      "shape": [1], "data": [0.5]}]},
    "id a dict": _body([0.5], id={"x": 1}),
    "outputs unknown": _body([0.5], outputs=[{"name": "explain"}]),
}


def test_hostile_v2_bodies_get_the_protocols_error_with_a_4xx(client) -> None:  # noqa: F811
    """One server for every case (a fixture per case cost 10 s each on the shared machine)."""
    wrong = {}
    for case, body in HOSTILE.items():
        if isinstance(body, bytes):
            r = client.post("/v2/models/price/infer", content=body,
                            headers={"content-type": "application/json"})
        else:
            r = client.post("/v2/models/price/infer", json=body)
        if not 400 <= r.status_code < 500 or set(r.json()) != {"error"}:
            wrong[case] = (r.status_code, r.text[:200])
    assert wrong == {}


def test_v1_names_the_column_of_an_integer_no_float_holds(client) -> None:  # noqa: F811
    r = client.post("/v1/models/price/predict", json={"records": [{"a": 10**400, "b": 0.5}]})
    assert r.status_code == 422
    assert r.json()["error"] == "schema_mismatch" and "'a'" in r.json()["detail"]
