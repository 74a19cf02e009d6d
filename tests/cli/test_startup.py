"""`weightinit --version` and `--help` do not wait on torch: `weightinit`'s __init__ loads the
API lazily (PEP 562). These tests check the laziness (in fresh interpreters, since this one
has torch already) and that the lazy package is the same API as the eager one was. The time
itself is measured by benchmarks/bench_cli.py, never asserted here."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import weightinit


def _fresh(code):
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()


def test_import_weightinit_and_cli_help_and_version_do_not_import_torch():
    lines = _fresh(
        "import sys, contextlib, io\n"
        "import weightinit\n"
        "print('torch' in sys.modules, weightinit.__version__, weightinit.InitError.__name__)\n"
        "from weightinit.cli import main\n"
        "for argv in (['--version'], ['--help']):\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit as exc:\n"
        "            assert exc.code == 0, exc.code\n"
        "    assert out.getvalue(), argv\n"
        "print('torch' in sys.modules, 'rich' in sys.modules)\n"
        "print(main([]), 'torch' in sys.modules)\n")
    assert lines == [f"False {weightinit.__version__} InitError", "False False",
                     "2 False"]


def test_a_command_loads_what_it_needs_and_star_import_gives_the_api():
    lines = _fresh("import sys\nfrom weightinit.cli import main\n"
                   "print(main(['gain', 'relu']), 'torch' in sys.modules)\n"
                   "from weightinit import *\nprint(init_model.__name__, He.__name__, "
                   "diagnose.__name__, InitError.__name__)\n")
    assert lines == ["1.414214", "0 True", "init_model He diagnose InitError"]


def test_every_public_name_resolves_to_its_layers_object():
    # The layers from sys.modules: `weightinit.diagnose` is the function (see below).
    for name in weightinit.__all__:
        assert hasattr(weightinit, name), name
    for layer, names in weightinit._LAZY.items():
        module = sys.modules[f"weightinit.{layer}"]
        for name in names:
            assert getattr(weightinit, name) is getattr(module, name), name
    assert set(weightinit.__all__) == {*weightinit._HOME, "InitError", "InitWarning",
                                       "__version__"}
    assert set(weightinit.__all__) <= set(dir(weightinit))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        weightinit.nope  # noqa: B018


def test_type_checking_imports_match_the_lazy_table():
    """The imports under TYPE_CHECKING (what mypy and readers see) name exactly the lazy
    names, each from the layer the table says."""
    tree = ast.parse(Path(weightinit.__file__).read_text(encoding="utf-8"))
    guarded = next(node for node in tree.body if isinstance(node, ast.If)
                   and ast.unparse(node.test) == "TYPE_CHECKING")
    seen = {alias.asname or alias.name: node.module for node in guarded.body
            if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert seen == weightinit._HOME


@pytest.mark.parametrize("first", ["weightinit.diagnose._report", "weightinit.lsuv",
                                   "weightinit.model"])
def test_the_api_is_whole_whichever_subpackage_is_imported_first(first):
    # Importing a subpackage first binds it on the package: `wi.diagnose` and `wi.lsuv` must
    # still be the functions, and LSUV registered as a policy as soon as `model` is imported,
    # as when __init__ imported everything.
    lines = _fresh(f"import {first}\nfrom weightinit.model import CALIBRATORS\n"
                   "print(sorted(CALIBRATORS))\nimport weightinit as wi\n"
                   "print(type(wi.diagnose).__name__, type(wi.lsuv).__name__)\n")
    assert lines == ["['lsuv']", "function function"]
