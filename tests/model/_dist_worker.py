"""One rank of the sharded-materialize test (tests/model/test_materialize.py starts N of them).

    python _dist_worker.py RANK WORLD PORT OUT_DIR

For each layout: build the small GPT on the meta device, shard it, `wi.materialize` it with seed
0 and then seed 1, gather every parameter (`full_tensor()`), and have rank 0 save what it
gathered. Each rank also records how many elements it filled. The test compares the gathered
tensors with `init_model` in one process. A watchdog ends the process after 240 s whatever
happens, so a hung collective cannot outlive the test.
"""

from __future__ import annotations

import datetime
import faulthandler
import json
import os
import sys

faulthandler.dump_traceback_later(240, exit=True)

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402

import weightinit as wi  # noqa: E402
from weightinit.studies import gpt  # noqa: E402

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


def fsdp(model: nn.Module, mesh: object) -> None:
    from torch.distributed.fsdp import fully_shard

    for block in model.blocks:  # type: ignore[union-attr]
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)


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
    return built


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
            local = sum((p._local_tensor if hasattr(p, "_local_tensor") else p).numel()
                        for p in model.parameters())
            state = gather(model)
            if rank == 0:
                torch.save(state, os.path.join(out_dir, f"{layout}_seed{seed}.pt"))
            record[f"{layout}_seed{seed}"] = {"local": local, "notes": list(plan.notes)}
        if layout == "tp_shard1":  # a joint scheme: each rank builds the whole matrix
            wi.materialize(model, device="cpu", seed=0, policy=ORTHOGONAL)
            state = gather(model)
            if rank == 0:
                torch.save(state, os.path.join(out_dir, f"{layout}_orthogonal.pt"))
        record[f"{layout}_placements"] = placements
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
