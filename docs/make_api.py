"""Write docs/api.md, the API reference, from the docstrings of everything in `weightinit.__all__`.

    make api                                   # rewrite docs/api.md (runs this script)
    .venv/bin/python docs/make_api.py --check  # exit 1 when docs/api.md is stale

tests/test_api_docs.py runs the check, so the reference cannot drift from the code. The page has
a table of contents (functions, then classes, then the rest), and for each name its signature and
its docstring as written; for a class also its public methods and properties (those it defines,
or inherits from another class of the package).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path
from typing import Any

PAGE = Path(__file__).with_name("api.md")
HEADER = """# API reference

Everything public is `import weightinit as wi` and the names below (`wi.__all__`); the modules
behind them are private. Generated from the docstrings by `docs/make_api.py`; CI checks that it is
current (`tests/test_api_docs.py`), so what this page says is what the code says. The command-line
tool is documented by `weightinit --help` and `weightinit COMMAND --help`.
"""


def _signature(obj: Any, name: str) -> str:
    try:
        text = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return name
    # Memory addresses would make the page change on every run.
    return name + re.sub(r" at 0x[0-9a-f]+", "", text)


def _doc(obj: Any) -> str:
    """The docstring, or the one it overrides (`inspect.getdoc` looks up the base classes)."""
    return inspect.getdoc(obj) or "(no docstring)"


def _own_members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties `cls` defines or inherits from a weightinit class."""
    members = []
    seen = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("weightinit"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                members.append((name, value))
            elif inspect.isfunction(value):
                members.append((name, getattr(cls, name)))
    return sorted(members)


def _section(name: str, obj: Any) -> list[str]:
    lines = [f"## `wi.{name}`", ""]
    if inspect.isclass(obj):
        kind = "exception" if issubclass(obj, BaseException) else "class"
        lines += [f"*{kind}*", "", "```python", _signature(obj, name), "```", "", _doc(obj), ""]
        for member, value in _own_members(obj):
            if isinstance(value, property):
                lines += [f"### `{name}.{member}` *(property)*", "", _doc(value), ""]
            else:
                lines += [f"### `{name}.{member}`", "", "```python",
                          _signature(value, member), "```", "", _doc(value), ""]
    elif callable(obj):
        lines += ["*function*", "", "```python", _signature(obj, name), "```", "", _doc(obj), ""]
    else:
        lines += [f"*{type(obj).__name__}*: `{obj!r}`", ""]
    return lines


def render() -> str:
    import weightinit as wi

    names = list(wi.__all__)
    objects = {name: getattr(wi, name) for name in names}
    groups = [
        ("Functions", [n for n in names if inspect.isfunction(objects[n])]),
        ("Classes", [n for n in names if inspect.isclass(objects[n])]),
        ("Constants", [n for n in names
                       if not inspect.isfunction(objects[n]) and not inspect.isclass(objects[n])]),
    ]
    lines = [HEADER]
    for title, members in groups:
        links = ", ".join(f"[`{n}`](#wi{n.lower()})" for n in members)
        lines += [f"**{title}:** {links}", ""]
    for _, members in groups:
        for name in members:
            lines += _section(name, objects[name])
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE} is stale: run `make api`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
