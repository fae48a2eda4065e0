"""`skops.io`, imported without importing PyTorch or Dask arrays.

At import, skops lists scikit-learn's estimators (`sklearn.utils.all_estimators`), whose package
walk imports every subpackage of scikit-learn, `sklearn.externals.array_api_compat.torch` and
`.dask` among them: with the optional `deep` extra installed that imported PyTorch into every
process that loads a model (`import skops.io` went from 3 s to 13 s here). Neither package holds
an estimator, and the walk skips a package it cannot import, so they are refused while skops
is imported, and only then; everything else imports them as usual.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from types import ModuleType

_NOT_ESTIMATORS = ("sklearn.externals.array_api_compat.torch",
                   "sklearn.externals.array_api_compat.dask")


class _SkipArrayBackends(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.startswith(_NOT_ESTIMATORS):
            raise ImportError(f"{name} is not imported while skops lists estimators")
        return None


def _import_skops_io() -> ModuleType:
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    finder = _SkipArrayBackends()
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module("skops.io")
    finally:
        sys.meta_path.remove(finder)


sio = _import_skops_io()
