"""The import rule of docs/DESIGN.md, checked over the real import graph of `leadcard/`:

    web (and the command line) → flows → card | bitrix24 | storage → core

A module imports its own subpackage or a lower layer, never a sibling of the middle layer
nor anything above; the runtime package never imports the development tools (`devtools/`).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "leadcard"

# Layer of each subpackage; the middle layer's three do not import each other.
# The command line (`cli`) is an entry point beside `web`: neither imports the other.
LAYERS = {"core": 0, "storage": 1, "bitrix24": 1, "card": 1, "flows": 2, "web": 3, "cli": 3}
ENTRY = 3  # leadcard/__init__.py: the package's entry, like web


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def layer_of(module: str) -> tuple[str, int] | None:
    """(subpackage, layer) of a leadcard module; None for modules outside leadcard."""
    parts = module.split(".")
    if parts[0] != "leadcard":
        return None
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1], LAYERS[parts[1]]
    if len(parts) > 1 and (PACKAGE / f"{parts[1]}.py").exists() or len(parts) == 1:
        return "entry", ENTRY
    return None  # a name imported from a package (`from leadcard.core import errors`)


def runtime_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "versions" not in p.parts)


def test_every_subpackage_of_the_rule_exists_and_nothing_else_lives_in_leadcard():
    subpackages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert subpackages == set(LAYERS)
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py"}


def test_nothing_imports_upward_or_sideways():
    broken = []
    for path in runtime_modules():
        here = layer_of(module_name(path))
        assert here is not None, path
        own, level = here
        for target in imports_of(path):
            if target.split(".")[0] == "devtools":
                broken.append(f"{module_name(path)} imports the dev tools ({target})")
                continue
            there = layer_of(target)
            if there is None:
                continue
            other, other_level = there
            if other == own or other_level < level:
                continue
            broken.append(f"{module_name(path)} ({own}) imports {target} ({other})")
    assert not broken, "\n".join(sorted(set(broken)))


def test_no_runtime_module_is_over_600_lines():
    """Small modules with one job: a module that grows past this wants splitting."""
    long = {module_name(p): n for p in runtime_modules()
            if (n := len(p.read_text().splitlines())) > 600}
    assert not long, long


def test_the_runtime_has_one_http_stack():
    """Portal REST and the OAuth server share one transport (bitrix24/http.py, urllib3):
    requests and Authlib are test and tool dependencies only."""
    offenders = sorted(
        f"{module_name(path)} imports {target}"
        for path in runtime_modules()
        for target in imports_of(path)
        if target.split(".")[0] in ("requests", "authlib", "httpx", "aiohttp")
    )
    assert not offenders, offenders


def test_the_rule_would_catch_a_violation():
    """The checker itself: a card module importing flows, or storage importing bitrix24."""
    assert layer_of("leadcard.flows.services") == ("flows", 2)
    assert layer_of("leadcard.card.model") == ("card", 1)
    assert layer_of("leadcard.bitrix24.oauth")[1] == layer_of("leadcard.storage.portals")[1]
    assert layer_of("leadcard.cli.portals") == ("cli", 3)
    assert layer_of("leadcard") == ("entry", ENTRY)
