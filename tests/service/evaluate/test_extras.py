"""What ``make serve`` installs runs ``service.evaluate``; a missing optional package is one
clear line naming the extra to install (exit 2), never a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

WITHOUT = """
import runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
sys.argv = ["python -m service.evaluate", *sys.argv[2:]]
runpy.run_module("service.evaluate", run_name="__main__")
"""


def _extras_installed(target: str) -> set[str]:
    """The distributions a Makefile target's ``$(VENV)/.installed-<extras>`` stamp installs."""
    makefile = (REPO / "Makefile").read_text()
    prerequisites = re.search(rf"^{target}:([^#\n]*)", makefile, re.MULTILINE)
    assert prerequisites is not None, target
    stamp = re.search(r"\.installed-([\w,-]+)", prerequisites.group(1))
    assert stamp is not None, prerequisites.group(0)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted, seen, names = stamp.group(1).split(","), set(), set()
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in extras[extra]:
            name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
            if name == project["name"]:
                wanted += re.search(r"\[(.*)\]", requirement).group(1).split(",")
            else:
                names.add(name)
    return names


@pytest.mark.parametrize("target", ["serve", "test"])
def test_make_serve_and_make_test_install_the_evaluate_extra(target: str) -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    evaluate = {
        re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower()
        for r in extras["optional-dependencies"]["evaluate"]
    }
    assert {"tqdm", "matplotlib", "scikit-learn"} <= evaluate
    assert evaluate <= _extras_installed(target)


def _without(blocked: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, blocked, *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=os.environ | {"ORT_DISABLE_TELEMETRY": "1"},
    )  # fmt: skip


def test_no_progress_needs_no_tqdm(repository: Path, cifar_folder: Path, tmp_path: Path) -> None:
    """The user's case: ``make serve``'s packages had no tqdm, and --no-progress imported it."""
    out = tmp_path / "r"
    done = _without("tqdm", [
        "--dataset", str(cifar_folder), "--model-repository", str(repository), "--out", str(out),
        "--no-progress", "--fit-temperature", "--no-write-calibration",
    ])  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "calibration: T = " in done.stdout
    assert json.loads((out / "report.json").read_text())["calibration"]["temperature"] > 0


@pytest.mark.parametrize(
    ("blocked", "extra", "message"),
    [
        ("tqdm", [], "tqdm is not installed (needed for the progress bar): "
         "pip install -e '.[evaluate]', or pass --no-progress"),
        ("matplotlib", ["--no-progress"], "matplotlib is not installed (needed for the "
         "figures): pip install -e '.[evaluate]', or pass --no-figures"),
        ("ray", ["--no-progress", "--no-figures", "--engine", "ray"],
         "ray is not installed (needed for --engine ray): pip install -e '.[ray]'"),
        ("sklearn", ["--no-progress", "--no-figures", "--dataset", "digits"],
         "scikit-learn is not installed (needed for the digits dataset): "
         "pip install -e '.[evaluate]'"),
    ],
)  # fmt: skip
def test_a_missing_optional_package_is_one_clear_line(
    blocked: str, extra: list[str], message: str, repository: Path, cifar_folder: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    args = ["--dataset", str(cifar_folder), "--model-repository", str(repository)]
    args += ["--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "r"), *extra]
    done = _without(blocked, args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [f"error: {message}"], done.stderr
    assert not (tmp_path / "r").exists()
