"""The package's shape, as the project's design draws its layers (theory at the bottom, cli at
the top): each layer imports only the layers below it, and only what they declare in their
`__init__` (`__all__`); no source file outgrows one job."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import weightinit

ROOT = Path(weightinit.__file__).parent
# Bottom first. Layers on one line are siblings: neither imports the other.
LAYERS = [("theory",), ("random",), ("schemes",), ("model",), ("lsuv", "diagnose"), ("report",),
          ("studies",), ("cli",)]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}
# top-level private modules any layer may use
SHARED = {"_errors", "_layout", "_render", "_state", "_sync"}
MAX_LINES = 450


def _sources() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module imported relative to the package root, names) for each relative import."""
    package = path.relative_to(ROOT).parent.parts
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            target = ".".join((*base, *(node.module.split(".") if node.module else ())))
            found.append((node.lineno, target, [alias.name for alias in node.names]))
    return found


def _layer_of(path: Path) -> str | None:
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else None


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_and_go_through_each_layers_init(path):
    mine = _layer_of(path)
    for line, target, names in _imports(path):
        top = target.split(".")[0] if target else ""
        if top in SHARED or not target or top == mine:
            continue
        where = f"{path.relative_to(ROOT)}:{line} imports {target}"
        assert "." not in target, f"{where}: import from the package, not its private module"
        if mine is None:
            continue  # weightinit/__init__.py assembles the public API from every layer
        assert top in LEVEL, f"{where}: not a layer"
        assert LEVEL[top] < LEVEL[mine], f"{where}: {mine} may only use layers below it"
        declared = set(importlib.import_module(f"weightinit.{top}").__all__)
        assert set(names) <= declared, (
            f"{where}: {sorted(set(names) - declared)} are not in weightinit.{top}.__all__")


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_source_file_is_over_450_lines(path):
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by job"


def test_every_layer_is_a_package_with_an_all():
    for name in LEVEL:
        module = importlib.import_module(f"weightinit.{name}")
        assert isinstance(getattr(module, "__all__", None), list), name
        for exported in module.__all__:
            assert hasattr(module, exported), f"weightinit.{name}.__all__ lists {exported}"
