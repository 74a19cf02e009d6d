"""`save_initial`: a seed checkpoint without materializing the model. The initial weights a
meta-built model would get from `materialize` are written as one safetensors file, one tensor
at a time (memory bounded by the largest tensor), with the plan as JSON beside it."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from .._errors import InitError, failure
from ..random import check_seed
from ._apply import isolated_inverse, parametrized
from ._discovery import discover
from ._distributed import is_dtensor, is_meta
from ._init_model import build_plan
from ._plan import InitPlan, PlanRow
from ._policy import CALIBRATORS, Policy
from ._presets import resolve_policy
from ._probe import check_model
from ._progress import Progress, check_progress, report, stages

WEIGHTS = "model.safetensors"
PLAN = "plan.json"
_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
           torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
           torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def save_initial(model: nn.Module, path: str | os.PathLike[str], *, seed: int = 0,
                 policy: str | Policy = "auto", example_inputs: object = None,
                 progress: Progress | None = None) -> InitPlan:
    """Write the parameters `wi.materialize(model, seed=seed, policy=policy)` would give
    `model` to the folder `path`: ``model.safetensors`` (one entry per parameter, under the
    names of ``model.state_dict()``; a tied parameter once, under its plan name) and
    ``plan.json`` (`InitPlan.to_json`). The model is built on the meta device (or anywhere:
    it is not changed); each tensor is allocated, filled and written in turn, so memory grows
    by about its largest tensor (1.02x for the 1.3e9-parameter study GPT). Loading the file
    into any sharded layout gives what `materialize` gives there, bit for bit. Buffers are
    not written: the model's own code computes them when it is materialized or built.

    Args:
        model: any ``torch.nn.Module``, typically built under ``torch.device("meta")``.
        path: a folder (created if missing); an existing ``model.safetensors`` is replaced.
        seed, policy, example_inputs: as in `init_model`.
        progress: optional ``progress(done, total, stage)``: ``"probing"`` (0 of 1, then 1
            of 1) around discovery, then ``(0, n, "writing")`` and ``(i, n, "writing")``
            after each of the n tensors is filled and written to the temporary file. An
            exception it raises propagates; the temporary file is removed and an existing
            ``model.safetensors`` is left as it was.

    Returns:
        The plan, as written to ``plan.json``.

    Raises:
        InitError: a bad argument, a kept parameter on the meta device (no values to write),
            a DTensor (save from the unsharded meta model), or a file that cannot be written.
            Nothing is left half-written: the file is written under a temporary name first.
    """
    model = check_model(model)
    seed = check_seed(seed)
    progress = check_progress(progress)
    if isinstance(policy, str) and policy in CALIBRATORS:
        raise InitError(f"Policy {policy!r} calibrates on data, which needs allocated weights; "
                        "save_initial takes a data-free policy such as 'auto'.")
    resolved = resolve_policy(policy)
    if not isinstance(path, (str, os.PathLike)):
        raise InitError(f"`path` must be a folder path (str or os.PathLike), got "
                        f"{type(path).__name__} {path!r:.80}.")
    folder = Path(os.fspath(path))
    if folder.exists() and not folder.is_dir():
        raise InitError(f"`path` {str(folder)!r} is a file; pass a folder for "
                        f"{WEIGHTS} and {PLAN}.")
    blocked = next((p for p in folder.absolute().parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:  # checked before any work: the folder could never be made
        raise InitError(f"`path` {str(folder)!r} cannot be a folder: {str(blocked)!r} is a "
                        "file. Pass a folder you can write to. Nothing was written.")
    if sys.byteorder != "little":
        raise InitError("save_initial writes safetensors' little-endian bytes on "
                        "little-endian machines only.")
    params = dict(model.named_parameters(remove_duplicate=False))
    sharded = [name for name, p in params.items() if is_dtensor(p)]
    if sharded:
        raise InitError(f"Parameter {sharded[0]!r} is a DTensor: save the seed checkpoint from "
                        "the model built on the meta device, before sharding it.")
    report(progress, 0, 1, "probing")
    plan = build_plan(discover(model, example_inputs), resolved, seed)
    report(progress, 1, 1, "probing")
    unwritable = [row.name for row in plan.rows if row.spec is None and (
        row.name not in params or is_meta(params[row.name]))]
    if unwritable:
        raise failure(
            f"Parameter {unwritable[0]!r} is kept by the policy and has no values on the meta "
            "device", fix="Give it a rule (wi.Policy([wi.Rule(spec, name=...), "
            "wi.Policy.preset('auto')])) or build the model with real values for it")
    entries = _entries(model, plan, params)
    header: dict[str, object] = {"__metadata__": {"format": "pt", "weightinit_seed": str(seed),
                                                  "weightinit_policy": plan.policy}}
    offset = 0
    for name, (shape, dtype, _) in entries.items():
        size = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        header[name] = {"dtype": _DTYPES[dtype], "shape": list(shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    temporary = folder / f".{WEIGHTS}.partial"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as out:
            out.write(len(text).to_bytes(8, "little"))
            out.write(text)
            step = stages(progress, "writing", len(entries))
            for done, (_, _, make) in enumerate(entries.values(), 1):
                values = make()
                out.write(values.contiguous().reshape(-1).view(torch.uint8).numpy().data)
                del values
                step(done)
        os.replace(temporary, folder / WEIGHTS)
        (folder / PLAN).write_text(plan.to_json(), encoding="utf-8")
    except OSError as exc:
        raise InitError(f"Could not write the seed checkpoint to {str(folder)!r}: {exc}. "
                        "Pass a folder you can write to.") from None
    finally:
        with contextlib.suppress(OSError):  # only left behind by a failure
            temporary.unlink(missing_ok=True)
    return plan


def _entries(model: nn.Module, plan: InitPlan, params: Mapping[str, torch.Tensor]
             ) -> dict[str, tuple[tuple[int, ...], torch.dtype, Callable[[], torch.Tensor]]]:
    """State-dict name -> (shape, dtype, a function making its values on the CPU)."""
    entries: dict[str, tuple[tuple[int, ...], torch.dtype, Callable[[], torch.Tensor]]] = {}
    for row in plan.rows:
        param = params.get(row.name)
        if param is not None:
            if param.dtype not in _DTYPES:
                raise InitError(f"Parameter {row.name!r} has dtype {param.dtype}, which "
                                "safetensors cannot store.")
            entries[row.name] = (row.shape, param.dtype, _maker(row, param, plan.seed))
            continue
        plist = parametrized(model, row.name)  # weight_norm and the like: the originals
        if any(True for _ in plist.buffers()):
            raise InitError(
                f"{row.name!r} is parametrized with state of its own (spectral_norm's power "
                "iteration vectors), which a parameters-only checkpoint cannot carry: build the "
                "model, wi.init_model it, and save its state_dict instead.")
        prefix = row.name.rpartition(".")[0]
        attr = row.name.rpartition(".")[2]
        originals = [plist.original] if plist.is_tensor else [
            getattr(plist, f"original{i}") for i in range(plist.ntensors)]
        names = [f"{prefix}.parametrizations.{attr}.original"] if plist.is_tensor else [
            f"{prefix}.parametrizations.{attr}.original{i}" for i in range(len(originals))]
        for i, (name, original) in enumerate(zip(names, originals, strict=True)):
            entries[name] = (tuple(original.shape), original.dtype,
                             _original_maker(row, plist, original.dtype, plan.seed, i))
    return entries


def _maker(row: PlanRow, param: torch.Tensor, seed: int) -> Callable[[], torch.Tensor]:
    def make() -> torch.Tensor:
        if row.spec is None:  # kept, with real values (checked before)
            return param.detach().to("cpu")
        values = torch.empty(row.shape, dtype=param.dtype)
        return row.fill_(values, seed=seed)
    return make


def _original_maker(row: PlanRow, plist: nn.Module, dtype: torch.dtype, seed: int,
                    index: int) -> Callable[[], torch.Tensor]:
    def make() -> torch.Tensor:
        values = row.fill_(torch.empty(row.shape, dtype=dtype), seed=seed)
        # The parametrization's own state (orthogonal's base) stays as it was: not written.
        return isolated_inverse(row, plist, values, seed)[0][index][1].detach()
    return make

