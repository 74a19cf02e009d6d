"""Load a model from `MODULE:FACTORY` (an importable module or a .py file) and build inputs."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._errors import InitError, did_you_mean, first_line


@contextlib.contextmanager
def _cwd_on_path() -> Iterator[None]:
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _import(where: str) -> Any:
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = Path(where)
        if not path.is_file():
            raise InitError(f"`MODULE` {where!r}: no such file.")
        name = f"_weightinit_factory_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise InitError(f"`MODULE` {where!r} is not a Python file.")
        module = importlib.util.module_from_spec(spec)
        try:
            with _cwd_on_path():
                spec.loader.exec_module(module)
        except Exception as exc:
            raise InitError(f"Running {where!r} failed: {first_line(exc).rstrip('.')}.") from None
        return module
    try:
        with _cwd_on_path():
            return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        raise InitError(
            f"`MODULE` {where!r} cannot be imported ({first_line(exc)}); give a dotted module "
            "name on the Python path or a path to a .py file."
        ) from None
    except Exception as exc:
        raise InitError(f"Importing {where!r} failed: {first_line(exc).rstrip('.')}.") from None


def load_model(target: str) -> Any:
    """Call the factory named by ``MODULE:FACTORY`` and return the nn.Module it builds."""
    from torch import nn

    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise InitError(
            f"`MODEL` {target!r} must look like MODULE:FACTORY, e.g. mypkg.models:make_net or "
            "path/to/net.py:build."
        )
    module = _import(where)
    factory = getattr(module, attr, None)
    if factory is None:
        names = [n for n in vars(module) if not n.startswith("_") and callable(vars(module)[n])]
        raise InitError(f"{where!r} has no attribute {attr!r}.{did_you_mean(attr, names)}")
    if not callable(factory):
        raise InitError(f"{target!r} is a {type(factory).__name__}, not a callable factory.")
    try:
        model = factory()
    except Exception as exc:
        raise InitError(f"Calling {target}() failed: {first_line(exc).rstrip('.')}.") from None
    if not isinstance(model, nn.Module):
        raise InitError(
            f"{target}() returned {type(model).__name__}, not a torch.nn.Module."
        )
    return model


def parse_shape(text: str) -> tuple[int, ...]:
    """``"8,3,32,32"`` -> (8, 3, 32, 32); positive ints only."""
    parts = [p.strip() for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected positive ints like 8,3,32,32, got {text!r}") from None
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(f"expected positive ints like 8,3,32,32, got {text!r}")
    return shape


def make_input(model: Any, shape: tuple[int, ...], dtype: str = "auto") -> Any:
    """A batch of `shape`: token ids when the first layer is an Embedding (or `dtype` is
    "long"), else N(0, 1) floats; from a private generator with seed 0."""
    import torch
    from torch import nn

    from ..model import owns_parameters

    first = next((m for m in model.modules() if owns_parameters(m)), None)
    param = next(model.parameters(), None)
    device = param.device if param is not None and param.device.type != "meta" else "cpu"
    generator = torch.Generator(device=device).manual_seed(0)
    if dtype == "long" or (dtype == "auto" and isinstance(first, (nn.Embedding,
                                                                  nn.EmbeddingBag))):
        high = first.num_embeddings if isinstance(first, (nn.Embedding, nn.EmbeddingBag)) else 2
        return torch.randint(0, high, shape, generator=generator, device=device)
    float_dtype = param.dtype if param is not None and param.dtype.is_floating_point else None
    return torch.randn(shape, generator=generator, device=device, dtype=float_dtype)
