"""Where the Streamlit app's files are: streamlit_app.py with pages/ beside it (and the
.streamlit/config.toml Streamlit reads next to its main script). In a checkout (also an editable
install) they are the repository's own; a wheel carries them as app/_bundle/ (pyproject.toml's
force-include), so `workbench ui` works after `pip install .` too."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
_CHECKOUT = _HERE.parent  # the repository root when this file is app/ui_files.py in a checkout
_BUNDLED = _HERE / "_bundle"


def ui_root() -> Path:
    """The directory holding streamlit_app.py and pages/: the checkout first (recognised by
    its pyproject.toml), else the wheel's copy."""
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "streamlit_app.py").is_file():
        return _CHECKOUT
    if (_BUNDLED / "streamlit_app.py").is_file():
        return _BUNDLED
    raise FileNotFoundError(
        f"The Streamlit app is missing: neither {_CHECKOUT} (a checkout) nor {_BUNDLED} (an "
        "installed wheel) holds streamlit_app.py and pages/. Reinstall ml-workbench.")


def streamlit_entry_point() -> Path:
    """The script `workbench ui` hands to `streamlit run`."""
    return ui_root() / "streamlit_app.py"
