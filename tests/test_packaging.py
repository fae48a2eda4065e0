"""Packaging: requirements.txt lists pyproject.toml's runtime dependencies, and a wheel built
from the checkout, installed into a fresh virtualenv, runs `workbench seed` and `workbench ui`
from the files it carries (not from this checkout).

The fresh virtualenv gets the project venv's dependencies through a .pth line naming its
site-packages: a path listed in a .pth file is put on sys.path without its own .pth files being
run, so the checkout's editable install there stays inactive, and nothing is downloaded (the
wheel is built with the project venv's hatchling, no build isolation, no index)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.factories import ROOT, free_port

SAMPLES = sorted(p.stem for p in (ROOT / "data").glob("*.csv"))


def _requirements(lines: list[str]) -> dict[str, tuple[frozenset[str], str, str]]:
    reqs = [Requirement(line) for line in lines]
    found = {r.name.lower(): (frozenset(r.extras), str(r.specifier), str(r.marker or ""))
             for r in reqs}
    assert len(found) == len(reqs), f"a dependency is listed twice: {lines}"
    return found


def test_requirements_txt_matches_pyproject() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = [line.split("#", 1)[0].strip()
             for line in (ROOT / "requirements.txt").read_text().splitlines()]
    listed = _requirements([line for line in lines if line])
    expected = _requirements(declared)
    assert sorted(listed) == sorted(expected), (
        f"names differ: only in requirements.txt {sorted(set(listed) - set(expected))}, "
        f"only in pyproject.toml {sorted(set(expected) - set(listed))}")
    differ = {name: (listed[name], expected[name]) for name in expected
              if listed[name] != expected[name]}
    assert not differ, f"(extras, specifier, marker): requirements.txt vs pyproject: {differ}"


def test_checkout_files_are_found_in_the_checkout() -> None:
    from app.ui_files import streamlit_entry_point
    from core.samples import sample_files

    assert streamlit_entry_point() == ROOT / "streamlit_app.py"
    assert [p.stem for p in sample_files()] == SAMPLES


def test_only_the_locators_reach_for_top_level_files() -> None:
    """A path built from a module's own location to data/, pages/ or streamlit_app.py works in
    a checkout and fails in an installed wheel: core/samples.py and app/ui_files.py know both."""
    pattern = re.compile(r'(parents\[\d+\]|\bROOT|\.parent)\s*/\s*["\'](data|pages|'
                         r'streamlit_app\.py)["\']')
    locators = {ROOT / "core" / "samples.py", ROOT / "app" / "ui_files.py"}
    offenders = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                 for folder in ("app", "core", "pages")
                 for path in sorted((ROOT / folder).rglob("*.py")) if path not in locators
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert not offenders, "use core.samples / app.ui_files instead:\n" + "\n".join(offenders)


# --- the installed wheel --------------------------------------------------------------------

def _run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=180, **kwargs)
    if proc.returncode != 0:
        pytest.fail(f"{args} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}", pytrace=False)
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A wheel of this checkout installed (without dependencies) into a new virtualenv."""
    base = tmp_path_factory.mktemp("wheel")
    dist, venv, cwd = base / "dist", base / "venv", base / "cwd"
    cwd.mkdir()
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--disable-pip-version-check", "--wheel-dir", dist, ROOT)
    (wheel,) = dist.glob("ml_workbench-*.whl")
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
                     ).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_project_venv_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
         "--no-index", "--disable-pip-version-check", wheel)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WORKBENCH_", "PYTHON", "STREAMLIT_"))}
    env["WORKBENCH_HOME"] = str(base / "home")
    return {"wheel": wheel, "python": python, "bin": venv / "bin", "site": site, "cwd": cwd,
            "env": env}


def _in_venv(installed: dict, code: str) -> str:
    return _run(installed["python"], "-P", "-c", code, cwd=installed["cwd"],
                env=installed["env"]).stdout


@pytest.mark.slow
def test_wheel_carries_the_app_pages_and_samples(installed: dict) -> None:
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    expected = {"app/_bundle/streamlit_app.py", "app/_bundle/.streamlit/config.toml",
                *(f"app/_bundle/pages/{p.name}" for p in (ROOT / "pages").glob("*.py")),
                *(f"core/_samples/{p.name}" for p in (ROOT / "data").iterdir()),
                *(f"core/migrations/versions/{p.name}"
                  for p in (ROOT / "core" / "migrations" / "versions").glob("*.py"))}
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"


@pytest.mark.slow
def test_installed_code_is_the_wheels_and_finds_its_bundle(installed: dict) -> None:
    found = json.loads(_in_venv(installed, (
        "import json, core, app; from app.ui_files import ui_root; "
        "from core.samples import samples_dir; print(json.dumps({'core': core.__file__, "
        "'app': app.__file__, 'ui': str(ui_root()), 'samples': str(samples_dir())}))")))
    site = installed["site"]
    assert found == {"core": str(site / "core" / "__init__.py"),
                     "app": str(site / "app" / "__init__.py"),
                     "ui": str(site / "app" / "_bundle"),
                     "samples": str(site / "core" / "_samples")}


@pytest.mark.slow
def test_installed_seed_stores_the_samples(installed: dict) -> None:
    workbench, run = installed["bin"] / "workbench", {"cwd": installed["cwd"],
                                                       "env": installed["env"]}
    seeded = json.loads(_run(workbench, "seed", "--json", **run).stdout)
    assert sorted(row["dataset"] for row in seeded) == SAMPLES
    stored = json.loads(_run(workbench, "datasets", "--json", **run).stdout)
    assert sorted(d["name"] for d in stored) == SAMPLES




@pytest.mark.slow
def test_installed_ui_starts_and_answers_health(installed: dict) -> None:
    port = free_port()
    proc = subprocess.Popen([str(installed["bin"] / "workbench"), "ui", "--port", str(port)],
                            cwd=installed["cwd"], env=installed["env"], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, answer = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None and answer is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                            timeout=2) as resp:
                    answer = (resp.status, resp.read().decode())
            except OSError:
                time.sleep(0.5)
    finally:
        with contextlib.suppress(ProcessLookupError):  # `workbench ui` and its Streamlit child
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            output = proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            output = proc.communicate()[0]
    assert answer == (200, "ok"), f"no health answer on port {port}:\n{output}"


@pytest.mark.slow
def test_installed_streamlit_app_runs_its_pages(installed: dict) -> None:
    """The installed entry point navigates to its pages, and the Data page offers the samples
    (health alone says only that the server started)."""
    shown = json.loads(_in_venv(installed, (
        "import json\n"
        "from streamlit.testing.v1 import AppTest\n"
        "from app.ui_files import streamlit_entry_point\n"
        "at = AppTest.from_file(str(streamlit_entry_point()), default_timeout=60).run()\n"
        "home = ([str(e.value) for e in at.exception], [t.value for t in at.title])\n"
        "at.switch_page('pages/data.py').run()\n"
        "data = ([str(e.value) for e in at.exception], [t.value for t in at.title],\n"
        "        at.selectbox[0].options)\n"
        "print(json.dumps({'home': home, 'data': data}))\n")).splitlines()[-1])
    assert shown["home"] == [[], ["ML Workbench"]]
    assert shown["data"] == [[], ["Data"], ["—", *(f"{s}.csv" for s in SAMPLES)]]


def test_ui_hands_streamlit_an_absolute_home(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A job worker the app starts runs in the package's directory: a relative home would
    name another store there."""
    from typer.testing import CliRunner

    from app.cli import app, ui_command

    calls: list[tuple[list[str], dict]] = []
    monkeypatch.setattr(subprocess, "call", lambda argv, **kw: calls.append((argv, kw)) or 0)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_HOME", "relative-home")
    result = CliRunner().invoke(app, ["ui", "--port", "8600"])
    assert result.exit_code == 0, result.output
    ((argv, kw),) = calls
    assert argv == ui_command("127.0.0.1", 8600)
    assert kw["env"]["WORKBENCH_HOME"] == str(tmp_path / "relative-home")
