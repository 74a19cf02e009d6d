"""Why `auto` must keep a parameter as the model set it: what the model says (frozen,
``_no_reinit``, transformers' ``_is_hf_initialized`` on a tensor loaded from a checkpoint),
what its values say (a bias with a deliberate offset), and what its uses say (a parameter no
rule is derived for: a learned scale, an additive attention bias)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._info import ParamInfo
from ._ops import canonical
from ._uses import Use

_SIGMAS = 6.0  # an i.i.d. zero-mean init has |mean| this far out with probability ~2e-9


def deliberate(info: ParamInfo, model: nn.Module, uses: Sequence[Use] | None = None) -> str:
    """The reason to keep `info`'s parameter as it is, or "" when nothing says so. `uses`:
    its uses in the recorded pass (None: no pass ran)."""
    param = _parameter(model, info.name)
    if param is not None:
        if not param.requires_grad:
            return "frozen (requires_grad=False): kept as the model set it"
        if getattr(param, "_no_reinit", False):
            return "the model marks it _no_reinit: kept as the model set it"
        if getattr(param, "_is_hf_initialized", False):
            return ("loaded from a checkpoint (transformers marks it _is_hf_initialized): kept "
                    "as loaded")
    if info.score_bias:
        return ("added to attention scores (a position bias); auto derives no rule for it: "
                "kept as the model set it")
    if info.role == "unknown":
        if uses is None:
            return "weightinit does not know this parameter (no forward pass showed its use)"
        ops = sorted({canonical(u.op.name) for u in uses})
        how = f"used by {', '.join(ops[:4])}" if ops else "not used in the forward pass"
        return (f"weightinit does not know this parameter ({how}: not a weight, bias, norm or "
                "embedding of the op it feeds), so auto derives no rule for it (a learned "
                "scale such as LayerScale or logit_scale, a log-parametrized constant): kept "
                "as the model set it")
    if param is not None and info.role.endswith("bias") and not info.role.startswith("norm"):
        offset = _offset(param)
        if offset is not None:
            return (f"set by the model to a deliberate offset (mean {offset:.3g}, far from the "
                    "zero mean of any i.i.d. init; e.g. a time-step bias): kept as the model "
                    "set it")
    return ""


def _parameter(model: nn.Module, name: str) -> torch.Tensor | None:
    """The registered parameter `name` (not an attribute: a parametrized tensor would be
    computed, and spectral_norm would step its power iteration)."""
    owner, _, attr = name.rpartition(".")
    try:
        module = model.get_submodule(owner)
    except AttributeError:
        return None
    found = module._parameters.get(attr)
    return found if isinstance(found, torch.Tensor) else None


def _offset(param: torch.Tensor) -> float | None:
    """The mean of a bias whose mean is far from 0 for its spread, or None."""
    if param.is_meta or param.numel() < 8 or not param.dtype.is_floating_point or hasattr(
            param, "placements"):
        return None
    with torch.no_grad():  # one pass, in place for float32 (no float64 copy of a weight)
        std, mean_t = torch.std_mean(param.detach().float())
        mean = float(mean_t)
        spread = float(std) / math.sqrt(param.numel())
    if not math.isfinite(mean) or mean == 0.0:
        return None
    # Far from 0 for its sampling error, and larger than its own spread: a trained bias
    # (a small drift among values of either sign) is not a deliberate offset.
    return mean if abs(mean) > _SIGMAS * spread + 1e-12 and abs(mean) > float(std) else None


_NOTE_AT_MOST = 1 << 22  # elements read to notice a structured weight (cheap next to a fill)


def structured(info: ParamInfo, model: nn.Module) -> str:
    """A note when the model set a weight auto has a rule for to something structured (a
    constant, a clearly non-zero mean) rather than zero-mean i.i.d. values; "" otherwise."""
    param = _parameter(model, info.name)
    if param is None or not info.is_weight or info.role in ("unknown", "norm.weight") or (
            param.numel() > _NOTE_AT_MOST) or info.keep:
        return ""
    if param.numel() >= 8 and param.dtype.is_floating_point and not param.is_meta and not (
            hasattr(param, "placements")):
        with torch.no_grad():
            values = param.detach().flatten()
            if bool((values == values[0]).all()):
                return (f"the model set it to the constant {float(values[0]):.3g}; auto's "
                        "rule replaces it")
    offset = _offset(param)
    if offset is not None:
        return f"the model set it to a non-zero mean ({offset:.3g}); auto's rule replaces it"
    return ""
