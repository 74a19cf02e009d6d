"""What the zoo measures on one no_grad eval forward pass: the RMS of the last hidden state, the
RMS of the residual stream just before the final norm, and whether every output is finite.

The last hidden state is read per model (`Case.hidden` in models.py):
  "hidden_states"          output.hidden_states[-1], with output_hidden_states=True
  "decoder_hidden_states"  output.decoder_hidden_states[-1] (T5, BART, Whisper)
  "text_embeds"            CLIP: text_model_output.last_hidden_state and
                           vision_model_output.last_hidden_state, measured separately
                           (text_embeds / image_embeds are L2-normalized: their RMS is fixed)
  "tensor"                 the output itself (plain torch)

The stream before the final norm is the input of the last norm module called in the forward:
a forward pre-hook on every module whose class name ends in "Norm" (LlamaRMSNorm, T5LayerNorm,
...) or that is a LayerNorm, RMSNorm, GroupNorm or BatchNorm (not weight parametrizations:
torch's _WeightNorm and _SpectralNorm); the last call's first tensor argument is kept. None when
the model calls no norm.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm, nn.RMSNorm)


@dataclasses.dataclass(frozen=True)
class Measurement:
    hidden: dict[str, float]  # RMS of the last hidden state(s), by name ("last" or text/vision)
    stream: float | None  # RMS of the last norm call's input
    stream_norm: str | None  # which module that was
    finite: bool  # every floating-point tensor in the output is finite
    nonfinite: tuple[str, ...]  # where it is not


def rms(t: torch.Tensor) -> float:
    return float(t.detach().double().pow(2).mean().sqrt())


def is_norm(name: str, module: nn.Module) -> bool:
    """An activation norm; not a weight parametrization (torch's _WeightNorm, _SpectralNorm
    under `parametrizations.`), whose class name also ends in "Norm"."""
    if ".parametrizations." in f".{name}." or module.__module__.startswith(
            "torch.nn.utils.parametrizations"):
        return False
    return isinstance(module, NORM_TYPES) or type(module).__name__.endswith("Norm")


def unwrap(model: nn.Module) -> nn.Module:
    """The eager module behind torch.compile's OptimizedModule (its forward would compile)."""
    return getattr(model, "_orig_mod", model)


def tensors(value: Any, prefix: str = "output") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in a model output (ModelOutput, tuple, dict, tensor), with its path."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, dict):  # ModelOutput is an OrderedDict
        for key, item in value.items():
            yield from tensors(item, f"{prefix}.{key}")
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from tensors(item, f"{prefix}[{i}]")


def last_hidden(output: Any, how: str) -> dict[str, torch.Tensor]:
    if how == "tensor":
        assert isinstance(output, torch.Tensor), type(output)
        return {"last": output}
    if how == "hidden_states":
        return {"last": output.hidden_states[-1]}
    if how == "decoder_hidden_states":
        return {"last": output.decoder_hidden_states[-1]}
    if how == "text_embeds":
        return {"text": output.text_model_output.last_hidden_state,
                "vision": output.vision_model_output.last_hidden_state}
    raise ValueError(f"unknown hidden-state reader {how!r}")


@contextlib.contextmanager
def last_norm_input(model: nn.Module) -> Iterator[dict[str, Any]]:
    """Yields a dict that ends up holding {"name", "input"} of the last norm call."""
    seen: dict[str, Any] = {}
    handles = []
    for name, module in model.named_modules():
        if not is_norm(name, module):
            continue

        def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                 _name: str = name) -> None:
            first = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)),
                         None)
            if first is not None:
                seen["name"], seen["input"] = _name, first.detach().clone()

        handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def forward(model: nn.Module, inputs: dict[str, Any], *, hidden_states_kwarg: bool) -> Any:
    """One no_grad forward in eval mode; the train/eval flags are put back."""
    model = unwrap(model)
    flags = {m: m.training for m in model.modules()}
    kwargs = dict(inputs)
    if hidden_states_kwarg:
        kwargs["output_hidden_states"] = True
    try:
        model.eval()
        with torch.no_grad():
            return model(**kwargs)
    finally:
        for module, flag in flags.items():
            module.training = flag


def measure(model: nn.Module, inputs: dict[str, Any], *, hidden: str,
            hidden_states_kwarg: bool) -> Measurement:
    with last_norm_input(unwrap(model)) as seen:
        output = forward(model, inputs, hidden_states_kwarg=hidden_states_kwarg)
    bad = tuple(path for path, t in tensors(output)
                if t.is_floating_point() and not bool(torch.isfinite(t).all()))
    states = {key: rms(t) for key, t in last_hidden(output, hidden).items()}
    stream = rms(seen["input"]) if "input" in seen else None
    return Measurement(hidden=states, stream=stream, stream_norm=seen.get("name"),
                       finite=not bad and all(math.isfinite(v) for v in states.values()),
                       nonfinite=bad)
