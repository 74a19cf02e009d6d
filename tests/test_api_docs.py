"""docs/api.md is generated from the docstrings (docs/make_api.py): it must be current, and every
public name and member must have a docstring."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("weightinit_make_api", ROOT / "docs/make_api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_reference_is_current():
    text = _generator().render()
    current = (ROOT / "docs/api.md").read_text(encoding="utf-8")
    assert current == text, "docs/api.md is stale: run `make api`"


def test_every_public_name_and_member_is_documented():
    text = _generator().render()
    missing = [block.splitlines()[0] for block in text.split("\n#") if "(no docstring)" in block]
    assert not missing, f"add docstrings to: {missing}"


def test_the_readme_links_the_reference():
    assert "docs/api.md" in (ROOT / "README.md").read_text(encoding="utf-8")
