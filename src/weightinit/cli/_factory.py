"""The user's code: a model from `MODULE:FACTORY` (an importable module or a .py file), example
inputs from `MODULE:FUNCTION`, and a batch of a given shape.

Whatever the user's code raises, `SystemExit` included, becomes one `InitError` that says whose
code it was."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import math
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .._errors import InitError, did_you_mean, first_line

_INT64 = 2**63 - 1  # torch's sizes are int64: a larger dimension or element count cannot exist


def article(word: str) -> str:
    """'a int' -> 'an int': the indefinite article for `word`, then `word`."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


@contextlib.contextmanager
def user_code(what: str) -> Iterator[None]:
    """Run the user's code (`what` names it, e.g. "The model factory 'net.py:build'"): a
    `sys.exit(n)` in it becomes an InitError rather than ending the CLI silently with n."""
    try:
        yield
    except SystemExit as exc:
        code = exc.code
        raise InitError(f"{what} called sys.exit({code!r}); code the CLI runs must return or "
                        "raise, not exit.") from None


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


def _import(where: str, argument: str) -> Any:
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = Path(where)
        if not path.is_file():
            raise InitError(f"`{argument}` {where!r}: no such file.")
        name = f"_weightinit_user_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise InitError(f"`{argument}` {where!r} is not a Python file.")
        module = importlib.util.module_from_spec(spec)
        try:
            with _cwd_on_path(), user_code(f"Running {where!r}"):
                spec.loader.exec_module(module)
        except InitError:
            raise
        except Exception as exc:
            raise InitError(f"Running {where!r} failed: {first_line(exc).rstrip('.')}.") from None
        return module
    try:
        with _cwd_on_path(), user_code(f"Importing {where!r}"):
            return importlib.import_module(where)
    except InitError:
        raise
    except ModuleNotFoundError as exc:
        raise InitError(
            f"`{argument}` {where!r} cannot be imported ({first_line(exc)}); give a dotted module "
            "name on the Python path or a path to a .py file."
        ) from None
    except Exception as exc:
        raise InitError(f"Importing {where!r} failed: {first_line(exc).rstrip('.')}.") from None


def _resolve(target: str, option: str, what: str) -> tuple[Any, str]:
    """The attribute `target` (``MODULE:NAME``) names, and `target`; `option` is how the user
    gave it (``MODULE:FACTORY``, ``--inputs``), `what` what NAME is (``FACTORY``)."""
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise InitError(
            f"`{option}` {target!r} must look like MODULE:{what}, e.g. mypkg.models:make_net or "
            "path/to/net.py:build."
        )
    module = _import(where, option)
    value = getattr(module, attr, None)
    if value is None:
        names = [n for n in vars(module) if not n.startswith("_") and callable(vars(module)[n])]
        raise InitError(f"{where!r} has no attribute {attr!r}.{did_you_mean(attr, names)}")
    return value, target


def load_model(target: str) -> Any:
    """The nn.Module that ``MODULE:FACTORY`` names: the factory's result, or the module
    attribute itself when it already is a model (an instance)."""
    from torch import nn

    factory, _ = _resolve(target, "MODULE:FACTORY", "FACTORY")
    if isinstance(factory, nn.Module):  # an instance: used as it is, never called
        return factory
    if not callable(factory):
        raise InitError(f"{target!r} is {article(type(factory).__name__)}, not a callable "
                        "factory or an nn.Module.")
    try:
        with user_code(f"The model factory {target!r}"):
            model = factory()
    except InitError:
        raise
    except Exception as exc:
        raise InitError(f"Calling {target}() failed: {first_line(exc).rstrip('.')}.") from None
    if not isinstance(model, nn.Module):
        raise InitError(f"{target}() returned {article(type(model).__name__)}, not a "
                        "torch.nn.Module.")
    return model


def load_inputs(target: str) -> Any:
    """Call the function ``MODULE:FUNCTION`` names (no arguments) and return what it gives:
    a tuple of positional arguments, a dict of keyword arguments, a tensor, or
    ``(args, kwargs)``, unchecked (see `as_model_call`)."""
    function, _ = _resolve(target, "--inputs", "FUNCTION")
    if not callable(function):
        raise InitError(f"--inputs {target!r} is {article(type(function).__name__)}, not a "
                        "function returning the model's inputs.")
    try:
        with user_code(f"The inputs function {target!r}"):
            return function()
    except InitError:
        raise
    except Exception as exc:
        raise InitError(f"Calling {target}() (--inputs) failed: "
                        f"{first_line(exc).rstrip('.')}.") from None


def as_model_call(model: Any, inputs: Any, target: str) -> Any:
    """`inputs` (what --inputs `target` returned) as the library takes example inputs: a
    tuple (positional), a dict (keyword) or a tensor. ``(args, kwargs)`` with both non-empty
    becomes one dict, by binding the positional arguments to forward's parameter names."""
    import torch

    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, Mapping):
        if not all(isinstance(key, str) for key in inputs):
            raise InitError(f"--inputs {target!r} returned a dict whose keys are not all "
                            "str; a dict holds forward's keyword arguments.")
        return dict(inputs)
    if (isinstance(inputs, tuple) and len(inputs) == 2 and isinstance(inputs[0], (tuple, list))
            and isinstance(inputs[1], Mapping)):
        args, kwargs = tuple(inputs[0]), dict(inputs[1])
        if not kwargs:
            return args
        if not args:
            return kwargs
        return _bind(model, args, kwargs, target)
    if isinstance(inputs, tuple):
        return inputs
    kind = article(type(inputs).__name__)
    raise InitError(f"--inputs {target!r} returned {kind}; return a tuple of forward's "
                    "positional arguments, a dict of its keyword arguments, a tensor, or "
                    "(args, kwargs).")


def _bind(model: Any, args: tuple[Any, ...], kwargs: dict[str, Any], target: str
          ) -> dict[str, Any]:
    try:
        signature = inspect.signature(model.forward)
        bound = signature.bind(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise InitError(f"--inputs {target!r} returned (args, kwargs) that "
                        f"{type(model).__name__}.forward does not take: "
                        f"{first_line(exc).rstrip('.')}.") from None
    kinds = {name: signature.parameters[name].kind for name in bound.arguments}
    if any(kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL)
           for kind in kinds.values()):
        raise InitError(f"--inputs {target!r} returned (args, kwargs), but "
                        f"{type(model).__name__}.forward takes positional-only arguments or "
                        "*args, which cannot be passed by name: return a tuple of positional "
                        "arguments only.")
    merged: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if kinds[name] == inspect.Parameter.VAR_KEYWORD:
            merged.update(value)
        else:
            merged[name] = value
    return merged


def parse_shape(text: str) -> tuple[int, ...]:
    """``"8,3,32,32"`` -> (8, 3, 32, 32); positive ints only, that torch's int64 sizes can
    hold (each dimension and their product)."""
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    if any(not p for p in parts):  # "4,8," or "4,,8": a dimension left out
        raise ValueError(f"expected positive ints like 8,3,32,32, got {text[:80]!r} (an empty "
                         "dimension)")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected positive ints like 8,3,32,32, got {text[:80]!r}") from None
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(f"expected positive ints like 8,3,32,32, got {text[:80]!r}")
    if math.prod(shape) > _INT64:
        raise ValueError(f"{text[:80]!r} has {math.prod(shape):.3g} elements, more than a "
                         "tensor can hold (2**63 - 1)")
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
    text = ",".join(map(str, shape))
    try:
        if dtype == "long" or (dtype == "auto" and isinstance(first, (nn.Embedding,
                                                                      nn.EmbeddingBag))):
            high = first.num_embeddings if isinstance(first, (nn.Embedding, nn.EmbeddingBag)
                                                      ) else 2
            return torch.randint(0, high, shape, generator=generator, device=device)
        float_dtype = param.dtype if param is not None and param.dtype.is_floating_point else None
        return torch.randn(shape, generator=generator, device=device, dtype=float_dtype)
    except (RuntimeError, MemoryError) as exc:  # too large for this machine
        raise InitError(f"--input-shape {text}: a batch of {math.prod(shape):,} values cannot "
                        f"be allocated ({first_line(exc)[:200]}); give a smaller batch.") from None
