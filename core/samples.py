"""Where the sample tables are. In a checkout (also an editable install) they are the
repository's data/; a wheel carries the same files as core/_samples/ (pyproject.toml's
force-include), so `pip install .` gives `workbench seed`, the Data page's samples and the demo
the same tables."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
_CHECKOUT = _HERE.parent  # the repository root when this file is core/samples.py in a checkout
_BUNDLED = _HERE / "_samples"


def samples_dir() -> Path:
    """The checkout's data/ first (recognised by its pyproject.toml), else the wheel's copy."""
    checkout = _CHECKOUT / "data"
    if (_CHECKOUT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    if _BUNDLED.is_dir():
        return _BUNDLED
    raise FileNotFoundError(
        f"The sample data are missing: neither {_CHECKOUT / 'data'} (a checkout) nor "
        f"{_BUNDLED} (an installed wheel) exists. Reinstall ml-workbench.")


def sample_files() -> list[Path]:
    """The sample CSV tables, by name."""
    return sorted(samples_dir().glob("*.csv"))
