"""What each parameter is, from the module that owns it: its role and its logical fans."""

from __future__ import annotations

import math

from torch import nn
from torch.nn.utils.parametrize import ParametrizationList

from .._errors import InitError
from ..theory import Fans, compute_fans
from ._dataflow import is_norm
from ._info import ParamInfo

# Roles a rule can match (globs work: "*.bias", "rnn.*").
ROLES = (
    "linear.weight", "linear.bias", "qkv.weight", "qkv.bias", "conv.weight", "conv.bias",
    "conv_transpose.weight", "conv_transpose.bias", "embedding", "pos_embedding",
    "class_token", "mask_token", "norm.weight", "norm.bias", "rnn.weight_ih", "rnn.weight_hh",
    "rnn.weight_hr", "rnn.bias_ih", "rnn.bias_hh", "attention.bias_kv", "prelu.weight",
    "unknown",
)
_QKV_NAMES = ("c_attn", "qkv", "qkv_proj", "wqkv", "query_key_value", "in_proj", "to_qkv")
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1, "LSTMCell": 4, "GRUCell": 3, "RNNCell": 1}


def _torch_fans(shape: tuple[int, ...]) -> Fans | None:
    if len(shape) < 2:
        return None
    rf = math.prod(shape[2:])
    return Fans(shape[1] * rf, shape[0] * rf, rf)


def _is_positional(name: str) -> bool:
    """wpe, pos_embed, position_embeddings, pos_encoding, ..."""
    name = name.lower()
    return name == "wpe" or "position" in name or (
        "pos" in name and ("emb" in name or "enc" in name))


def _is_hf_conv1d(module: nn.Module) -> bool:
    """transformers' Conv1D (GPT-2): a linear layer with its weight stored as (in, out)."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def _leaf(module_name: str) -> str:
    return module_name.rsplit(".", 1)[-1].lower()


def _role(module: nn.Module, module_name: str, attr: str, shape: tuple[int, ...]
          ) -> tuple[str, Fans | None, int]:
    """(role, logical fans, gates) of `module.<attr>`."""
    is_bias = attr == "bias" or attr.startswith("bias")
    layered = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)
    if (isinstance(module, layered) or _is_hf_conv1d(module)) and attr not in ("weight",
                                                                               "bias"):
        # weight_norm's weight_g / weight_v and other reparametrizations: not a plain weight.
        return "unknown", None, 1
    packed = _leaf(module_name) in _QKV_NAMES and len(shape) >= 1 and shape[-1 if
                                                                           _is_hf_conv1d(module)
                                                                           else 0] % 3 == 0
    if isinstance(module, (nn.Linear, nn.Bilinear)) or _is_hf_conv1d(module):
        if is_bias:
            return ("qkv.bias" if packed else "linear.bias"), None, 1
        if _is_hf_conv1d(module):
            fan_out = shape[1] // 3 if packed else shape[1]
            return ("qkv.weight" if packed else "linear.weight"), Fans(shape[0], fan_out), 1
        if isinstance(module, nn.Bilinear):
            return "linear.weight", Fans(shape[1] * shape[2], shape[0]), 1
        if packed:
            return "qkv.weight", compute_fans(shape, "qkv"), 1
        return "linear.weight", compute_fans(shape, "linear"), 1
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        if is_bias:
            return "conv_transpose.bias", None, 1
        return "conv_transpose.weight", compute_fans(shape, "conv_transpose",
                                                     groups=module.groups), 1
    if isinstance(module, nn.modules.conv._ConvNd):
        if is_bias:
            return "conv.bias", None, 1
        return "conv.weight", compute_fans(shape, "conv", groups=module.groups), 1
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        role = "pos_embedding" if _is_positional(_leaf(module_name)) else "embedding"
        return role, compute_fans(shape, "embedding"), 1
    if isinstance(module, nn.MultiheadAttention):
        if attr == "in_proj_weight":
            return "qkv.weight", compute_fans(shape, "qkv"), 1
        if attr == "in_proj_bias":
            return "qkv.bias", None, 1
        if attr in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
            return "linear.weight", compute_fans(shape, "linear"), 1
        if attr in ("bias_k", "bias_v"):
            return "attention.bias_kv", None, 1
    kind = type(module).__name__
    if isinstance(module, nn.RNNBase) or kind in _GATES:
        gates = _GATES.get(kind, _GATES.get(getattr(module, "mode", ""), 1))
        if isinstance(module, nn.RNNBase):
            gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
        for prefix in ("weight_ih", "weight_hh", "weight_hr", "bias_ih", "bias_hh"):
            if attr.startswith(prefix):
                fans = None
                if prefix.startswith("weight") and len(shape) == 2:
                    per_gate = shape[0] // gates if prefix != "weight_hr" else shape[0]
                    fans = Fans(shape[1], per_gate)
                return f"rnn.{prefix}", fans, gates if prefix != "weight_hr" else 1
    if isinstance(module, nn.PReLU):
        return "prelu.weight", None, 1
    if is_norm(module) and attr in ("weight", "bias", "scale", "gamma", "beta") and len(
            shape) <= 1:
        return ("norm.bias" if attr in ("bias", "beta") else "norm.weight"), None, 1
    lowered = attr.lower()
    if lowered.endswith("mask_token"):
        return "mask_token", None, 1
    if lowered in ("cls", "cls_token", "class_token") or lowered.endswith(
            ("cls_token", "class_token", "dist_token", "register_tokens", "reg_token",
             "reg_tokens")):
        return "class_token", None, 1
    if _is_positional(lowered):
        return "pos_embedding", None, 1
    return "unknown", None, 1


def describe_parameters(model: nn.Module) -> list[ParamInfo]:
    """Every distinct parameter of `model`, in registration order, as a `ParamInfo` with what
    its module says (role, fans, aliases, padding row); the forward pass's findings (feed,
    residual structure) are added by discovery. A parametrized tensor (weight_norm,
    spectral_norm through ``torch.nn.utils.parametrize``) is one row under its logical name
    (``fc.weight``), filled through the parametrization's ``right_inverse``."""
    owners: dict[object, list[tuple[str, str, str, nn.Module]]] = {}
    shapes: dict[object, tuple[int, ...]] = {}
    order: list[object] = []
    for module_name, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, ParametrizationList):
            continue
        found: list[tuple[str, object, tuple[int, ...]]] = []
        for attr, param in module.named_parameters(recurse=False):
            if isinstance(param, nn.parameter.UninitializedParameter):
                raise InitError(
                    f"Parameter {_join(module_name, attr)!r} of {type(module).__name__} is not "
                    "initialized yet (a lazy module infers its shape on its first call): run "
                    "one forward pass on a batch first, then initialize the model."
                )
            found.append((attr, id(param), tuple(param.shape)))
        for attr in getattr(module, "parametrizations", {}) or {}:
            shape = parametrized_shape(module, attr)
            if shape is not None:
                found.append((attr, (id(module), attr), shape))
        for attr, key, shape in found:
            full = _join(module_name, attr)
            if key not in owners:
                owners[key] = []
                order.append(key)
                shapes[key] = shape
            if all(full != seen for seen, _, _, _ in owners[key]):
                owners[key].append((full, module_name, attr, module))
    modules = dict(model.named_modules(remove_duplicate=False))
    result = []
    for key in order:
        entries = owners[key]
        shape = shapes[key]

        # The canonical owner: an embedding when an embedding is tied to an output layer
        # (its padding row and role belong to the table), else the first module whose role
        # is understood, else the first.
        def rank(entry: tuple[str, str, str, nn.Module], shape: tuple[int, ...] = shape) -> int:
            role = _role(entry[3], entry[1], entry[2], shape)[0]
            return 0 if role in ("embedding", "pos_embedding") else 2 if role == "unknown" else 1

        full, module_name, attr, module = sorted(entries, key=rank)[0]
        role, fans, gates = _role(module, module_name, attr, shape)
        aliases = tuple(e[0] for e in entries if e[0] != full)
        # Not `module.weight`: a parametrized weight would be computed (and spectral_norm
        # would step its power iteration).
        weight_shape = shapes.get(id(module._parameters.get("weight")),
                                  shapes.get((id(module), "weight")))
        result.append(ParamInfo(
            name=full, aliases=aliases, shape=shape, role=role, layer=type(module).__name__,
            module=module_name, fans=fans,
            torch_fans=(Fans(shape[0], shape[1]) if _is_hf_conv1d(module) and len(shape) == 2
                        else _torch_fans(shape)),
            gates=gates,
            tied_output=role == "embedding" and any(
                isinstance(modules.get(_parent(alias)), nn.Linear) for alias in aliases),
            weight_shape=weight_shape,
            attr=attr,
            padding_idx=getattr(module, "padding_idx", None) if role == "embedding" else None,
            module_type=type(module),
        ))
    return result


def _join(module: str, attr: str) -> str:
    return f"{module}.{attr}" if module else attr


def parametrized_shape(module: nn.Module, attr: str) -> tuple[int, ...] | None:
    """The logical shape of `module`'s parametrized tensor `attr`, read from its originals
    (the parametrization is not run: spectral_norm would step its power iteration). For the
    parametrizations torch ships (spectral_norm and orthogonal keep the shape; weight_norm's
    original1 is the direction) it is the largest original's; None without originals."""
    plist: nn.Module = module.parametrizations[attr]  # type: ignore[index,assignment]
    originals = [t for _, t in sorted(plist.named_parameters(recurse=False))]
    if not originals:
        return None
    return tuple(max(originals, key=lambda t: t.numel()).shape)


def _parent(name: str) -> str:
    """The qualified name of the module that owns parameter (or module) `name`."""
    return name.rsplit(".", 1)[0] if "." in name else ""
