"""One rank of the sharded-materialize test (tests/model/test_materialize.py starts N of them).

    python _dist_worker.py RANK WORLD PORT OUT_DIR

For each layout: build the small GPT (or, for "strided_uneven" and "strided_boxes",
tests/model/_dist_nets.py's Uneven) on the meta device, shard it, `wi.materialize` it with
seed 0 and then seed 1, gather every parameter (`full_tensor()`), and have rank 0 save what it
gathered. Each rank also records how many elements it holds and how many it filled. The test
compares the gathered tensors with `init_model` in one process. On 4 ranks the torchtitan
layouts (ColwiseParallel/RowwiseParallel on "tp", then FSDP2 on "dp" of the same 2x2 mesh) must
give _StridedShard placements, and the worker checks that they do; "strided_boxes" lays out
_StridedShard placements by hand whose shards are several boxes each. A watchdog ends the
process after 240 s whatever happens, so a hung collective cannot outlive the test.
"""

from __future__ import annotations

import datetime
import faulthandler
import json
import os
import re
import sys

faulthandler.dump_traceback_later(240, exit=True)

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402

import weightinit as wi  # noqa: E402
from weightinit.model._distributed import shard_boxes  # noqa: E402
from weightinit.studies import gpt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _dist_nets import TP_PLAN, Uneven  # noqa: E402

SIZE = {"vocab": 97, "context": 16, "width": 30, "layers": 2, "heads": 3}


ORTHOGONAL = wi.Policy([wi.Rule(wi.Orthogonal(), role="linear.weight"), wi.Policy.preset("auto")])


def build() -> nn.Module:
    with torch.device("meta"):
        return gpt(**SIZE)


def tensor_parallel(model: nn.Module, mesh: object) -> None:
    """Every Linear in the blocks rowwise-parallel: weight Shard(1), bias Replicate. The tied
    token embedding / output head stay plain tensors (a model mixing both)."""
    from torch.distributed.tensor.parallel import RowwiseParallel, parallelize_module

    plan = {f"blocks.{i}.{name}": RowwiseParallel()
            for i in range(SIZE["layers"]) for name in ("attn.qkv", "attn.proj", "fc", "out")}
    parallelize_module(model, mesh, plan)  # type: ignore[arg-type]


def torchtitan_tp(model: nn.Module, mesh: object, styles: dict[str, str]) -> None:
    """torchtitan's tensor parallelism: ColwiseParallel (weight and bias Shard(0)) and
    RowwiseParallel (Linear weight Shard(1), bias Replicate; Embedding weight Shard(0))."""
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    kinds = {"colwise": ColwiseParallel, "rowwise": RowwiseParallel}
    plan = {name: kinds[kind]() for name, kind in styles.items()}
    parallelize_module(model, mesh, plan)  # type: ignore[arg-type]


def gpt_styles() -> dict[str, str]:
    return {f"blocks.{i}.{name}": kind for i in range(SIZE["layers"])
            for name, kind in (("attn.qkv", "colwise"), ("attn.proj", "rowwise"),
                               ("fc", "colwise"), ("out", "rowwise"))}


def fsdp(model: nn.Module, mesh: object) -> None:
    from torch.distributed.fsdp import fully_shard

    for block in getattr(model, "blocks", []):
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)


def check_strided(layout: str, model: nn.Module) -> None:
    """Every parameter that tensor parallelism shards on dim 0 is _StridedShard on "dp"."""
    from torch.distributed.tensor.placement_types import _StridedShard

    for name, param in model.named_parameters():
        placements = tuple(getattr(param, "placements", ()))
        same_dim = len(placements) == 2 and getattr(placements[1], "dim", None) == 0
        if same_dim and not isinstance(placements[0], _StridedShard):
            raise AssertionError(f"{layout}: {name} has placements {placements}")
    if not any(isinstance(getattr(p, "placements", (None,))[0], _StridedShard)
               for p in model.parameters()):
        raise AssertionError(f"{layout}: no _StridedShard placement")


def layouts(world: int) -> dict[str, nn.Module]:
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", (world,))
    built: dict[str, nn.Module] = {}
    model = build()
    fsdp(model, mesh)
    built["fsdp"] = model
    model = build()
    tensor_parallel(model, mesh)
    built["tp_shard1"] = model
    if world == 4:  # 2-D: tensor parallel inside pairs, FSDP across them
        mesh_2d = init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "tp"))
        model = build()
        tensor_parallel(model, mesh_2d["tp"])
        fsdp(model, mesh_2d["dp"])
        built["fsdp_tp_2d"] = model
        model = build()  # torchtitan's layout: FSDP2 shards the dims TP sharded too
        torchtitan_tp(model, mesh_2d["tp"], gpt_styles())
        fsdp(model, mesh_2d["dp"])
        built["strided"] = model
        with torch.device("meta"):
            model = Uneven()
        torchtitan_tp(model, mesh_2d["tp"], TP_PLAN)
        fsdp(model, mesh_2d["dp"])
        built["strided_uneven"] = model
        for layout in ("strided", "strided_uneven"):
            check_strided(layout, built[layout])
        built["strided_boxes"] = strided_boxes(mesh_2d)
    return built


def strided_boxes(mesh: object) -> nn.Module:
    """Uneven with _StridedShard placements whose shards are several boxes each (the
    torchtitan layout gives one box per rank): DTensors on meta, laid out by hand."""
    from torch.distributed.tensor import DTensor, Replicate, Shard
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset
    from torch.distributed.tensor.placement_types import _StridedShard

    def strided(dim: int, factor: int) -> object:
        return _StridedShard(dim, split_factor=factor)

    layout = {"emb.weight": (Shard(0), strided(0, 2)), "up.weight": (strided(0, 3), Shard(1)),
              "up.bias": (strided(0, 2), Replicate()), "down.weight": (strided(1, 2), Shard(0)),
              "down.bias": (Replicate(), strided(0, 2)),
              "head.weight": (strided(0, 2), strided(1, 2)), "head.bias": (strided(0, 2),
                                                                           Shard(0))}
    with torch.device("meta"):
        model = Uneven()
    for name, placements in layout.items():
        module_name, attr = name.rsplit(".", 1)
        module = model.get_submodule(module_name)
        shape = getattr(module, attr).shape
        local_shape, _ = compute_local_shape_and_global_offset(shape, mesh, placements)
        local = torch.empty(local_shape, device="meta")
        param = DTensor.from_local(local, mesh, placements, run_check=False, shape=shape,
                                   stride=torch.empty(shape, device="meta").stride())
        setattr(module, attr, nn.Parameter(param))
    return model


def replicated_numel(model: nn.Module, world: int) -> int:
    """Elements of all ranks' shards together: each parameter's numel times how many ranks
    hold each of its elements."""
    total = 0
    for param in model.parameters():
        copies = world
        if hasattr(param, "device_mesh"):
            mesh = param.device_mesh
            copies = world // mesh.size()
            for dim, placement in enumerate(param.placements):
                if placement.is_replicate():
                    copies *= mesh.size(dim)
        total += param.numel() * copies
    return total


def refused_placement(world: int) -> str:
    """A Partial placement (pending sums, not a slice) must be refused before anything changes."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Partial

    mesh = init_device_mesh("cpu", (world,))
    with torch.device("meta"):
        model = nn.Linear(4, 4)
    weight = DTensor.from_local(torch.empty(4, 4, device="meta"), mesh, [Partial()],
                                run_check=False)
    model.weight = nn.Parameter(weight)
    try:
        wi.materialize(model, device="cpu")
    except wi.InitError as exc:
        still_meta = all(p.is_meta for p in model.parameters())
        return f"{exc} | still meta: {still_meta}"
    return "not refused"


def matches_checkpoint(model: nn.Module, out_dir: str) -> bool | None:
    """Whether every local box of every parameter equals the same box of the seed checkpoint
    the test wrote with wi.save_initial (seed 0) from the one-process meta model; None for a
    layout of another model."""
    from safetensors.torch import load_file

    saved = load_file(os.path.join(out_dir, "seed", "model.safetensors"))
    params = dict(model.named_parameters())
    if set(params) != set(saved):
        return None
    for name, param in params.items():
        if not hasattr(param, "device_mesh"):
            if not torch.equal(param.detach(), saved[name]):
                return False
            continue
        _, boxes = shard_boxes(name, param)
        values = param._local_tensor  # type: ignore[attr-defined]
        for start, offset, size in boxes:
            mine = values[tuple(slice(s, s + n) for s, n in zip(start, size, strict=True))]
            theirs = saved[name][tuple(slice(o, o + n) for o, n in zip(offset, size,
                                                                       strict=True))]
            if not torch.equal(mine, theirs):
                return False
    return True


def gather(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for name, param in model.named_parameters():
        full = param.full_tensor() if hasattr(param, "full_tensor") else param
        out[name] = full.detach().clone()
    return out


def main() -> None:
    rank, world, port, out_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=120))
    record: dict[str, object] = {"rank": rank}
    for layout, model in layouts(world).items():
        placements = {name: str(getattr(p, "placements", "plain"))
                      for name, p in model.named_parameters()}
        for seed in (0, 1):
            plan = wi.materialize(model, device="cpu", seed=seed)
            if seed == 0:
                record[f"{layout}_matches_seed_checkpoint"] = matches_checkpoint(model, out_dir)
            local = sum((p._local_tensor if hasattr(p, "_local_tensor") else p).numel()
                        for p in model.parameters())
            state = gather(model)
            if rank == 0:
                torch.save(state, os.path.join(out_dir, f"{layout}_seed{seed}.pt"))
            filled = re.search(r"filled ([\d,]+) local elements", " ".join(plan.notes))
            assert filled is not None, plan.notes
            record[f"{layout}_seed{seed}"] = {"local": local, "notes": list(plan.notes),
                                              "filled": int(filled[1].replace(",", ""))}
        record[f"{layout}_held"] = replicated_numel(model, world)
        record[f"{layout}_boxes"] = max(
            len(shard_boxes(name, p)[1]) for name, p in model.named_parameters()
            if hasattr(p, "device_mesh"))
        if layout in ("tp_shard1", "strided"):  # a joint scheme: each rank builds the matrix
            wi.materialize(model, device="cpu", seed=0, policy=ORTHOGONAL)
            state = gather(model)
            if rank == 0:
                torch.save(state, os.path.join(out_dir, f"{layout}_orthogonal.pt"))
        record[f"{layout}_placements"] = placements
        if not layout.startswith("strided_"):
            record[f"{layout}_tied"] = model.head.weight is model.tokens.weight  # type: ignore
    record["refused"] = refused_placement(world)
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(record, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: gloo's threads can abort it after the work is saved
