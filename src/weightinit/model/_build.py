"""`build`: construct a model straight onto its device, initialized once. The factory runs on
the meta device (no memory; torch's and transformers' own init passes cost nothing there),
then `materialize` allocates and fills it, so the default construction's cost is not paid
before weightinit's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .._errors import InitError, failure
from ._materialize import materialize
from ._policy import Policy


def build(factory: Callable[..., nn.Module], *args: Any, device: torch.device | str = "cpu",
          seed: int = 0, policy: str | Policy = "auto", example_inputs: object = None,
          **kwargs: Any) -> nn.Module:
    """``factory(*args, **kwargs)`` built on the meta device, then materialized on `device`
    by `policy`: the same bits as building it for real and calling
    ``wi.init_model(model, policy, seed=seed)``, without allocating or initializing it twice,
    except where `auto` keeps the model's own values: on the meta device there are none, so
    a parameter `auto` would keep (Mamba's ``A_log``, a learned scale) is refused by name,
    and a bias the model sets to a deliberate offset cannot be seen and gets auto's rule.
    Give such parameters a rule, or build for real and call `init_model`.

    It replaces ``with accelerate.init_empty_weights(): model = ...`` (or transformers'
    ``no_init_weights``) followed by ``model.to_empty(device=...)`` and an init pass of your
    own: buffers are recomputed by the model's own code, as `materialize` does.

    Args:
        factory: a model class or a function returning an ``nn.Module``, e.g.
            ``transformers.LlamaForCausalLM`` (with the config as `args`).
        device: where the parameters live (``"cpu"``, ``"cuda:0"``, a ``torch.device``).
        seed, policy, example_inputs: as in `init_model`.

    Returns:
        The model, allocated on `device` and initialized.

    Raises:
        InitError: a factory that fails or returns no ``nn.Module``, or anything
            `materialize` refuses.

    Example:
        >>> model = wi.build(transformers.LlamaForCausalLM, config, device="cuda")
    """
    if isinstance(factory, nn.Module):
        raise InitError(
            f"`factory` is an instance of {type(factory).__name__}, already built: pass the "
            "class (or a function) and its arguments, or call wi.init_model on the instance."
        )
    if not callable(factory):
        raise InitError(f"`factory` must be a model class or a function returning an "
                        f"nn.Module, got {type(factory).__name__} {factory!r:.80}.")
    name = getattr(factory, "__name__", repr(factory))
    try:
        with torch.device("meta"):
            model = factory(*args, **kwargs)
    except InitError:
        raise
    except Exception as exc:
        raise failure(f"Building {name} on the meta device", exc,
                      fix="Check the factory's arguments; code that needs real values while "
                      "constructing cannot be built on meta (build it for real and call "
                      "wi.init_model)") from exc
    if not isinstance(model, nn.Module):
        raise InitError(f"`factory` {name} returned {type(model).__name__}, not an nn.Module.")
    materialize(model, device=device, seed=seed, policy=policy, example_inputs=example_inputs)
    return model
