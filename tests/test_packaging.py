"""Packaging: one import package, ``hipback``, and nothing generic at the top level of site-packages.

The wheel is built from this checkout and installed (without dependencies) into a fresh virtual environment
whose dependencies come from the running interpreter's site-packages through a ``.pth`` line (so no download
is needed and the project's own editable install is not seen). Then, from a neutral working directory,
``ingest``, ``processing`` and ``simulator`` must not be importable, ``hipback.*`` must come from the fresh
environment, and ``hipback --version`` must print the distribution's version.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GENERIC = ("ingest", "processing", "simulator")


def test_every_source_package_is_listed_in_pyproject():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(conf["packages"])
    found = {"hipback"}
    for top in GENERIC:
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).parts
            found.add(".".join(("hipback", *rel)))
    assert listed == found
    assert conf["package-dir"] == {"hipback": "hipback", **{f"hipback.{t}": t for t in GENERIC}}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
         str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    (whl,) = out.glob("hipback-*.whl")
    return whl


def test_wheel_holds_only_the_hipback_package(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        tops = {name.split("/", 1)[0] for name in zf.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"hipback"}
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert "hipback/processing/__init__.py" in names and "hipback/ingest/cli.py" in names


def test_fresh_environment_from_the_wheel(wheel: Path, tmp_path: Path):
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    res = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    fresh_site = Path(subprocess.check_output(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    # dependencies (numpy, typer, ...) from this interpreter; a .pth in an added directory is not executed, so
    # the editable install's import hook of the development environment stays out
    (fresh_site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = {p.name for p in fresh_site.iterdir()}
    assert not installed & set(GENERIC)

    probe = (
        "import importlib.util, sys\n"
        f"missing = [n for n in {GENERIC!r} if importlib.util.find_spec(n) is not None]\n"
        "assert not missing, missing\n"
        "import hipback, hipback.processing, hipback.ingest.cli, hipback.simulator\n"
        f"assert hipback.processing.__file__.startswith({str(fresh_site)!r}), hipback.processing.__file__\n"
        "print(hipback.__version__)\n"
    )
    neutral = tmp_path / "elsewhere"
    neutral.mkdir()
    res = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, cwd=neutral, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    version = res.stdout.strip()
    assert version and version != "0+unknown"
    res = subprocess.run([str(env_dir / "bin" / "hipback"), "--version"], capture_output=True, text=True,
                         cwd=neutral, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == f"hipback {version}"
