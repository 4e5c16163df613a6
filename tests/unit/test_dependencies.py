"""The dependency locks: every runtime pin is locked with hashes, and the test set agrees."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def hashed(path: Path) -> dict[str, int]:
    """Package -> number of --hash lines in a pip-compile lock file."""
    counts: dict[str, int] = {}
    current = None
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonical(match.group(1))
            counts[current] = 0
        elif current and line.strip().startswith("--hash=sha256:"):
            counts[current] += 1
    return counts


def test_every_runtime_pin_is_locked_with_hashes():
    wanted = pins(ROOT / "requirements.in")
    locked = pins(ROOT / "requirements.txt")
    assert wanted, "requirements.in pins nothing"
    for name, version in wanted.items():
        assert locked.get(name) == version, f"{name}=={version} is not what requirements.txt locks"
    counts = hashed(ROOT / "requirements.txt")
    assert set(counts) == set(locked)
    assert all(counts.values()), [n for n, c in counts.items() if not c]


def test_the_test_environment_installs_the_same_runtime_set():
    runtime = pins(ROOT / "requirements.txt")
    dev = pins(ROOT / "requirements-dev.txt")
    for name, version in runtime.items():
        assert dev.get(name) == version, f"requirements-dev.txt has {name}=={dev.get(name)}"
    for name, version in pins(ROOT / "requirements-dev.in").items():
        assert dev.get(name) == version
    assert all(hashed(ROOT / "requirements-dev.txt").values())
    # Lock files name no index or local path: they work on any machine.
    for lock in ("requirements.txt", "requirements-dev.txt"):
        text = (ROOT / lock).read_text()
        assert "--index-url" not in text and "--find-links" not in text and "file://" not in text


def test_project_metadata_names_the_python_it_runs_on():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    assert sys.version_info >= (3, 11)
