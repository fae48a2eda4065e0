"""PyTorch networks as scikit-learn estimators: a tabular network and sequence models (LSTM,
temporal convolution) for market data. Optional: `pip install -e '.[deep]'` (CPU torch).

Nothing here imports torch at import time of the package: `available()` answers whether the
extra is installed without loading it, so the catalogue and the Train page stay fast and the
rest of the workbench never needs torch."""

from __future__ import annotations

import importlib.util

INSTALL_HINT = ("PyTorch networks (deep_tabular, lstm, tcn) need the optional 'deep' extra: "
                "pip install -e '.[deep]' (CPU torch and safetensors).")


def available() -> bool:
    """torch and safetensors can be imported (checked without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "safetensors"))


__all__ = ["INSTALL_HINT", "available"]
