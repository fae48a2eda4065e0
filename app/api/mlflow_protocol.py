"""MLflow's scoring protocol (`/invocations`), turned into the records our predict takes."""

from __future__ import annotations

from typing import Any

from core.deploy.deployments import InvalidRequestError
from core.store.shapes import Record


def mlflow_records(payload: Any, columns: list[str]) -> list[Record]:
    """MLflow's scoring protocol → records: dataframe_split, dataframe_records, inputs (or
    instances), as `mlflow models serve` accepts them."""
    if not isinstance(payload, dict):
        raise InvalidRequestError(
            "Send a JSON object with one of dataframe_split, dataframe_records, inputs.")
    keys = [k for k in ("dataframe_split", "dataframe_records", "inputs", "instances")
            if k in payload]
    if len(keys) != 1:
        raise InvalidRequestError(
            "Send exactly one of dataframe_split, dataframe_records or inputs (MLflow scoring "
            f"protocol); got {', '.join(map(str, payload)) or 'none'}.")
    data = payload[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise InvalidRequestError('dataframe_split needs {"columns": [...], '
                                      '"data": [[...], ...]}.')
        cols = data.get("columns") or columns
        rows = data["data"]
        if not all(isinstance(r, list) and len(r) == len(cols) for r in rows):
            raise InvalidRequestError(
                f"dataframe_split: every row of data must hold {len(cols)} values, one per "
                "column.")
        return [dict(zip(cols, r, strict=True)) for r in rows]
    if isinstance(data, dict):  # {"col": [values...]} (column-oriented inputs)
        lists = {k: v if isinstance(v, list) else [v] for k, v in data.items()}
        n = {len(v) for v in lists.values()}
        if len(n) != 1:
            raise InvalidRequestError("inputs: every column needs the same number of values.")
        return [{k: v[i] for k, v in lists.items()} for i in range(n.pop())]
    if not isinstance(data, list):
        raise InvalidRequestError(f"{keys[0]} must be a list of records.")
    if all(isinstance(r, dict) for r in data):
        return data
    if all(isinstance(r, list) and len(r) == len(columns) for r in data):
        return [dict(zip(columns, r, strict=True)) for r in data]
    raise InvalidRequestError(
        f"{keys[0]} must be a list of objects, or of lists of {len(columns)} values in the "
        f"model's column order ({', '.join(columns[:10])}).")
