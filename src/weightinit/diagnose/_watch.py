"""What diagnose measures on the values of the pass beyond its layers' outputs: the RMS of the
operands of every add (residual branches, summed embeddings), how peaked attention is at init,
and the effective output scale of each normalization layer.

`Watch` is a `TorchFunctionMode` entered *outside* the recorder (``model.record``): each op the
recorder sees reaches it once, in the same order, after the recorder has run, so its own
arithmetic is never recorded. Its measurements are matched to the graph's nodes by order and
function (`Watch.add_rms`); any mismatch drops them rather than misplace them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_unflatten

from ._graphs import op_name

ATTENTION_MIN_KEYS = 8  # rows with fewer allowed keys are peaked by construction (causal rows)
_ATTENTION_ELEMENTS = 1 << 22  # attention probabilities recomputed per call, at most


@dataclasses.dataclass(frozen=True)
class Attention:
    """Attention probabilities of one call: where (the innermost module running), the mean over
    query rows of the largest probability, and the mean number of keys a row can attend to."""

    module: str
    mean_max: float
    keys: float
    rows: int
    how: str  # "softmax" or "scaled_dot_product_attention" (recomputed from q and k)


def _rms(x: torch.Tensor) -> float | None:
    if not x.is_floating_point() or x.numel() == 0 or x.device.type == "meta":
        return None
    wide = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else None
    norm = float(torch.linalg.vector_norm(x.detach(), dtype=wide))
    return norm / math.sqrt(x.numel()) if math.isfinite(norm) else None


def _tensors(tree: Any) -> list[torch.Tensor]:
    return [x for x in tree_flatten(tree)[0] if isinstance(x, torch.Tensor)]


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str,
              default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _peakedness(probs: torch.Tensor) -> tuple[float, float, int] | None:
    """(mean max probability, mean allowed keys, rows) over rows with enough allowed keys."""
    p = probs.detach().float().reshape(-1, probs.shape[-1])
    keys = (p > 0).sum(-1)
    largest = p.amax(-1)
    rows = (keys >= ATTENTION_MIN_KEYS) & torch.isfinite(largest)
    count = int(rows.sum())
    if not count:
        return None
    return float(largest[rows].mean()), float(keys[rows].float().mean()), count


def _recompute(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    """softmax(q k^T * scale + mask) of a ``scaled_dot_product_attention`` call, on as many
    samples as keep it under 4M elements."""
    q, k = _argument(args, kwargs, 0, "query"), _argument(args, kwargs, 1, "key")
    if not (isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor)) or q.dim() < 3:
        return None
    if not q.is_floating_point() or q.device.type == "meta":
        return None
    batch = q.shape[0]
    mask = _argument(args, kwargs, 3, "attn_mask")
    causal = bool(_argument(args, kwargs, 5, "is_causal", False))
    scale = _argument(args, kwargs, 6, "scale")
    per_sample = max(1, q[0].numel() // q.shape[-1] * k.shape[-2])
    keep = max(1, min(q.shape[0], _ATTENTION_ELEMENTS // per_sample))
    q, k = q[:keep].float(), k[:keep].float()
    # One sample over the cap: every step-th query row (the mask and causality follow them).
    step = max(1, math.ceil(per_sample / _ATTENTION_ELEMENTS))
    rows = torch.arange(0, q.shape[-2], step, device=q.device)
    q = q[..., rows, :]
    if q.dim() >= 4 and k.shape[-3] != q.shape[-3] and q.shape[-3] % k.shape[-3] == 0:
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], dim=-3)  # grouped-query attention
    scores = q @ k.transpose(-2, -1) * (scale if scale is not None else q.shape[-1] ** -0.5)
    if causal:  # query row i sees keys j <= i (aligned at the end, as SDPA's tril)
        offset = k.shape[-2] - int(_argument(args, kwargs, 0, "query").shape[-2])
        keys = torch.arange(k.shape[-2], device=scores.device)
        allowed = keys[None, :] <= (rows[:, None] + max(0, offset))
        scores = scores.masked_fill(~allowed, -math.inf)
    if isinstance(mask, torch.Tensor):
        if mask.dim() == scores.dim() and mask.shape[0] == batch:
            mask = mask[:keep]
        if mask.dim() >= 2 and mask.shape[-2] > 1:
            mask = mask[..., rows, :]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, -math.inf)
        else:
            scores = scores + mask.float()
    return torch.softmax(scores, dim=-1)


class Watch(TorchFunctionMode):
    """Measures adds and attention during the forward pass; `modules` names where it is."""

    def __init__(self) -> None:
        super().__init__()
        self.adds: list[tuple[Callable[..., Any], list[float | None]]] = []
        self.attention: list[Attention] = []
        self.stack: list[str] = []
        self.lookup_varies: dict[str, bool] = {}  # module -> its indices differ by sample

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = str(getattr(func, "__name__", "")).strip("_")
        if name in ("add", "iadd", "radd"):
            # Before the call: an in-place add overwrites its first operand. One entry per
            # call whatever happens, so that entries and the graph's add nodes line up.
            values: list[float | None] = []
            operands = _tensors((args, kwargs))
            if len(operands) == 2 and all(t.numel() > 1 for t in operands):
                with contextlib.suppress(Exception), torch.no_grad():
                    values = [_rms(t) for t in operands]
            self.adds.append((func, values))
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        if name == "multi_head_attention_forward":
            # nn.MultiheadAttention's ops run inside one call this mode cannot see into: run
            # it again for its per-head weights (no dropout, no grad), when it takes them.
            with contextlib.suppress(Exception), torch.no_grad():
                again = dict(kwargs, need_weights=True, average_attn_weights=False,
                             training=False)
                weights = func(*args, **again)[1]
                if isinstance(weights, torch.Tensor) and weights.dim() == 4 and weights.shape[
                        -1] >= ATTENTION_MIN_KEYS:
                    keep = max(1, _ATTENTION_ELEMENTS // max(1, weights[0].numel()))
                    self._attention(weights[:keep], "multi_head_attention")
            return out
        if name in ("embedding", "softmax", "scaled_dot_product_attention"):
            # A measurement that fails is left out; the model's own pass goes on.
            with contextlib.suppress(Exception), torch.no_grad():
                self._measure(name, tuple(args), kwargs, out)
        return out

    def _measure(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                 out: Any) -> None:
        if name == "embedding" and args and isinstance(args[0], torch.Tensor):
            where = self.stack[-1] if self.stack else ""
            if where not in self.lookup_varies:
                ids = args[0]
                self.lookup_varies[where] = ids.dim() >= 2 and ids.shape[0] > 1 and not bool(
                    (ids == ids[:1]).all())
        elif name == "softmax" and isinstance(out, torch.Tensor):
            dim = _argument(args, kwargs, 1, "dim")
            looks = out.dim() == 4 or (out.dim() == 3 and out.shape[-1] == out.shape[-2])
            if (isinstance(dim, int) and dim in (-1, out.dim() - 1) and looks
                    and out.shape[-1] >= ATTENTION_MIN_KEYS and out.is_floating_point()):
                keep = max(1, min(out.shape[0], _ATTENTION_ELEMENTS // max(1, out[0].numel())))
                self._attention(out[:keep], "softmax")
        elif name == "scaled_dot_product_attention":
            probs = _recompute(args, kwargs)
            if probs is not None and probs.shape[-1] >= ATTENTION_MIN_KEYS:
                self._attention(probs, name)

    def _attention(self, probs: torch.Tensor, how: str) -> None:
        found = _peakedness(probs)
        if found is not None:
            where = self.stack[-1] if self.stack else ""
            self.attention.append(Attention(where, found[0], found[1], found[2], how))

    @contextlib.contextmanager
    def modules(self, model: nn.Module) -> Iterator[None]:
        """Track the innermost module running (to say where an attention is)."""
        handles = []
        seen: set[nn.Module] = set()
        for name, module in model.named_modules():
            if module in seen:
                continue
            seen.add(module)

            def enter(m: nn.Module, a: Any, name: str = name) -> None:
                self.stack.append(name)

            def leave(m: nn.Module, a: Any, out: Any) -> None:
                if self.stack:
                    self.stack.pop()

            handles.append(module.register_forward_pre_hook(enter))
            handles.append(module.register_forward_hook(leave, always_call=True))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def add_rms(self, nodes: list[Any]) -> dict[int, list[float | None]]:
        """The operands' RMS of each recorded add node, by node id; empty when the calls seen
        here and the graph's add nodes do not line up one to one."""
        adds = [n for n in nodes if n.kind == "op" and op_name(n) == "add"
                and n.out_index is None]
        if len(adds) != len(self.adds):
            return {}
        matched = {}
        for node, (func, values) in zip(adds, self.adds, strict=True):
            if node.func is not func:
                return {}
            matched[node.id] = values
        return matched


# -- normalization layers ---------------------------------------------------------------------
def looks_like_norm(module: nn.Module, named_norm: bool) -> bool:
    """A candidate normalization: one named so (``is_norm``), or a leaf whose own parameters are
    all vectors (a scale and a shift). Which of them normalize is measured (`norm_scale`)."""
    own = list(module.parameters(recurse=False))
    if not own:
        return False
    if named_norm:
        return True
    children = any(True for c in module.children() for _ in c.parameters())
    return not children and all(p.dim() == 1 for p in own)


def norm_scale(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> float | None:
    """The RMS of `module`'s output on its recorded input rescaled to RMS 1, when it behaves as
    a normalization: the same output for that input doubled (to 1%). None otherwise (BatchNorm
    in eval mode is an affine map, not a normalization)."""
    leaves, spec = tree_flatten((args, kwargs))
    index = next((i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor)), None)
    if index is None:
        return None
    x = leaves[index]
    size = _rms(x)
    if size is None or not size > 0:
        return None

    def run(factor: float) -> torch.Tensor | None:
        changed = list(leaves)
        changed[index] = x * (factor / size)
        a, k = tree_unflatten(changed, spec)
        out = _tensors(module(*a, **k))
        return out[0] if out and out[0].shape == x.shape else None

    with torch.no_grad():
        try:
            once, twice = run(1.0), run(2.0)
        except Exception:  # a module that cannot be called again on its own: not measured
            return None
        if once is None or twice is None:
            return None
        scale, change = _rms(once), _rms(twice - once)
    if scale is None or change is None or not scale > 0 or change > 1e-2 * scale:
        return None
    return scale
