"""The vocabulary of recorded ops: which torch functions are pointwise, which only move elements
(layout), which pool or select them; and small readers of a recorded node's arguments."""

from __future__ import annotations

from typing import Any

from torch.utils._pytree import tree_map

from ..theory import ACTIVATION_NAMES
from ._graph import Node, Ref

_RENAMES = {"iadd": "add", "radd": "add", "imul": "mul", "rmul": "mul", "isub": "sub",
            "truediv": "div", "itruediv": "div", "rtruediv": "rdiv", "ipow": "pow",
            "rpow": "rpow", "div_": "div", "true_divide": "div", "multiply": "mul",
            "subtract": "sub", "clip": "clamp", "negative": "neg", "swish": "silu"}

POINTWISE = frozenset({
    *ACTIVATION_NAMES, "logsigmoid", "tanhshrink", "softshrink", "hardshrink", "threshold",
    "sin", "cos", "exp", "exp2", "log", "log1p", "expm1", "sqrt", "rsqrt", "abs", "neg",
    "erf", "erfc", "square", "pow", "rpow", "mul", "add", "sub", "rsub", "div", "rdiv",
    "clamp", "clamp_min", "clamp_max", "minimum", "maximum", "where", "gt", "lt", "ge", "le",
    "sign", "reciprocal", "addcmul", "lerp",
})
# The same values, passed through (dropout runs in eval mode during discovery).
PASSTHROUGH = frozenset({
    "clone", "to", "float", "double", "half", "bfloat16", "type", "type_as", "detach",
    "contiguous", "cpu", "cuda", "identity", "dropout", "dropout1d", "dropout2d", "dropout3d",
    "alpha_dropout", "feature_alpha_dropout", "data",
})
# The same elements, rearranged: looked through, but remembered, so that two tensors laid out
# differently are not taken for the same tensor.
LAYOUT = PASSTHROUGH | frozenset({
    "view", "reshape", "flatten", "unflatten", "permute", "transpose", "t", "T", "mT", "H",
    "mH", "squeeze",
    "unsqueeze", "expand", "expand_as", "view_as", "reshape_as", "movedim",
    # Concatenation, padding and resampling keep each element's distribution: the feed of a
    # DenseNet or U-Net layer is the activation before them (for a cat of different tensors,
    # the channel-weighted mean of its inputs' second moments; see MERGES).
    "cat", "concat", "concatenate", "stack", "hstack", "vstack", "pad", "interpolate",
    "upsample", "upsample_nearest2d", "upsample_bilinear2d", "flip", "roll",
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
})
# Layout ops that join several tensors: a merge (a source of its own) when the tensors differ.
MERGES = frozenset({"cat", "concat", "concatenate", "stack", "hstack", "vstack"})
# Statistics of a window: looked through for the activation, but they change which elements
# line up, so two tensors pooled differently are not the same tensor.
POOLING = frozenset({
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
    "adaptive_max_pool2d_with_indices", "mean",
})
# A subset of the elements.
SELECT = frozenset({"getitem", "chunk", "split", "tensor_split", "narrow", "select", "unbind",
                    "split_with_sizes", "index_select", "slice"})


def canonical(name: str) -> str:
    """``__iadd__`` -> ``add``, ``relu_`` -> ``relu``, ``__rmul__`` -> ``mul``."""
    core = name.strip("_")
    return _RENAMES.get(core, core)



def first_tensor_input(node: Node) -> Ref | None:
    """The first tensor argument of `node` (inside a list of tensors too), or None."""
    for arg in (*node.args, *node.kwargs.values()):
        if isinstance(arg, Ref):
            return arg
        if isinstance(arg, (tuple, list)):
            for inner in arg:
                if isinstance(inner, Ref):
                    return inner
    return None


def refs(node: Node) -> list[Ref]:
    """Every tensor argument of `node`."""
    found: list[Ref] = []

    def visit(x: Any) -> Any:
        if isinstance(x, Ref):
            found.append(x)
        return x

    tree_map(visit, (node.args, node.kwargs))
    return found


def static(x: Any) -> str:
    """A recorded argument as it decides a layout step: "T" for a tensor, else its repr."""
    return "T" if isinstance(x, Ref) else repr(x)
