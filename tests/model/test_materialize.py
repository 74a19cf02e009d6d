"""wi.materialize: models built on the meta device, allocated and filled bit for bit like
init_model in one process, sharded over 2 and 4 gloo processes (FSDP2, tensor parallel Shard(1),
both on a 2-D mesh, and torchtitan's ColwiseParallel/RowwiseParallel + FSDP2 layout with its
_StridedShard placements, uneven sizes included) or not; buffers recomputed by their module's
code or refused by name; bad arguments and failing fills refused with the model unchanged."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import model_nets as nets
import pytest
import torch
from torch import nn

import weightinit as wi
from weightinit.studies import gpt

WORKER = Path(__file__).with_name("_dist_worker.py")
_spec = importlib.util.spec_from_file_location("dist_nets", WORKER.with_name("_dist_nets.py"))
assert _spec is not None and _spec.loader is not None
dist_nets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dist_nets)
SIZE = {"vocab": 97, "context": 16, "width": 30, "layers": 2, "heads": 3}  # as in the worker
ORTHOGONAL = wi.Policy([wi.Rule(wi.Orthogonal(), role="linear.weight"),
                        wi.Policy.preset("auto")])


def reference(seed: int, policy: object = "auto", factory=None) -> dict[str, torch.Tensor]:
    """init_model in this one process on a model built normally on the CPU."""
    model = gpt(**SIZE) if factory is None else factory()
    wi.init_model(model, policy, seed=seed)  # type: ignore[arg-type]
    return {name: p.detach() for name, p in model.named_parameters()}


def on_meta(factory, *args, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return factory(*args, **kwargs)


def all_meta(model: nn.Module) -> bool:
    return all(t.is_meta for t in [*model.parameters(), *model.buffers()])


def no_meta(model: nn.Module) -> bool:
    return not any(t.is_meta for t in [*model.parameters(), *model.buffers()])


# --- sharded, in 2 and 4 processes -------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch(world: int, out: Path) -> list[dict[str, object]]:
    """Start `world` worker processes (gloo on 127.0.0.1), wait at most 300 s, kill them all
    on a timeout, and return each rank's record."""
    package_root = str(Path(wi.__file__).resolve().parent.parent)
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")])}
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(rank), str(world), str(port),
                               str(out)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
             for rank in range(world)]
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=300)[0])
    except subprocess.TimeoutExpired:
        pytest.fail(f"the {world} workers did not finish in 300 s")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for rank, (proc, log) in enumerate(zip(procs, logs, strict=True)):
        assert proc.returncode == 0, f"rank {rank} exited {proc.returncode}:\n{log[-3000:]}"
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(world)]


@pytest.fixture(scope="module")
def references() -> dict[str, dict[str, torch.Tensor]]:
    return {"seed0": reference(0), "seed1": reference(1), "orthogonal": reference(0, ORTHOGONAL),
            "uneven_seed0": reference(0, factory=dist_nets.Uneven),
            "uneven_seed1": reference(1, factory=dist_nets.Uneven)}


STRIDED = "(_StridedShard(dim=0, sf=2), Shard(dim=0))"  # FSDP2 on "dp" over TP Shard(0)


@pytest.mark.parametrize("world", [2, 4])
def test_sharded_materialize_equals_one_process(world, tmp_path, references):
    # A seed checkpoint written from the meta model in this one process: every layout's
    # local boxes must equal the same boxes of it (the workers check, for seed 0).
    wi.save_initial(on_meta(gpt, **SIZE), tmp_path / "seed", seed=0)
    records = _launch(world, tmp_path)
    layouts = ["fsdp", "tp_shard1"] + (
        ["fsdp_tp_2d", "strided", "strided_uneven", "strided_boxes"] if world == 4 else [])
    for layout in layouts:
        prefix = "uneven_" if layout.startswith("strided_") else ""
        total = sum(p.numel() for name, p in references[f"{prefix}seed0"].items()
                    if name != "head.weight" or prefix)  # the tied head counts once
        placements = records[0][f"{layout}_placements"]
        assert isinstance(placements, dict)
        if layout == "tp_shard1":
            assert placements["blocks.0.fc.weight"] == "(Shard(dim=1),)"
        if layout == "fsdp_tp_2d":
            assert placements["blocks.0.fc.weight"] == "(Shard(dim=0), Shard(dim=1))"
        if layout == "strided":  # torchtitan: colwise layers strided, rowwise ones not
            assert placements["blocks.0.fc.weight"] == STRIDED
            assert placements["blocks.1.attn.qkv.bias"] == STRIDED
            assert placements["blocks.0.out.weight"] == "(Shard(dim=0), Shard(dim=1))"
            assert placements["blocks.0.out.bias"] == "(Shard(dim=0), Replicate())"
        if layout == "strided_uneven":
            for name in ("emb.weight", "up.weight", "up.bias", "head.weight", "head.bias"):
                assert placements[name] == STRIDED, name
        if layout == "strided_boxes":  # shards of several boxes, up to 2 x 2
            assert placements["head.weight"] == (
                "(_StridedShard(dim=0, sf=2), _StridedShard(dim=1, sf=2))")
        expected = None if layout.startswith("strided_") else True  # the GPT's layouts
        assert all(r[f"{layout}_matches_seed_checkpoint"] is expected for r in records), layout
        for seed in (0, 1):
            gathered = torch.load(tmp_path / f"{layout}_seed{seed}.pt")
            expected = references[f"{prefix}seed{seed}"]
            assert gathered.keys() == expected.keys()
            for name, values in expected.items():
                assert torch.equal(gathered[name], values), (layout, seed, name)
            # Each rank filled exactly what it holds, and the ranks' shares add up to the
            # parameters times their replicas: sharded layouts split the work.
            work = [r[f"{layout}_seed{seed}"] for r in records]
            assert [w["filled"] for w in work] == [w["local"] for w in work]  # type: ignore
            assert max(w["local"] for w in work) < total  # type: ignore
            assert sum(w["local"] for w in work) == records[0][f"{layout}_held"]  # type: ignore
            if layout == "fsdp":  # FSDP shards every parameter: the parts add up
                assert records[0][f"{layout}_held"] == total
        if not prefix:
            assert all(r[f"{layout}_tied"] for r in records)
        if layout == "strided_boxes":
            assert max(r[f"{layout}_boxes"] for r in records) == 4  # type: ignore
        first = torch.load(tmp_path / f"{layout}_seed0.pt")
        second = torch.load(tmp_path / f"{layout}_seed1.pt")
        key = "up.weight" if prefix else "blocks.0.fc.weight"
        assert not torch.equal(first[key], second[key])
    # A joint scheme on Shard(1) (and on the boxes of _StridedShard): every rank builds the
    # orthogonal matrix and keeps its slices.
    for layout in ["tp_shard1"] + (["strided"] if world == 4 else []):
        gathered = torch.load(tmp_path / f"{layout}_orthogonal.pt")
        for name, values in references["orthogonal"].items():
            assert torch.equal(gathered[name], values), (layout, name)
    # A Partial placement is refused by name, with nothing allocated.
    refused = str(records[0]["refused"])
    assert "Parameter 'weight'" in refused and "Partial" in refused
    assert refused.endswith("still meta: True")


# --- one process -------------------------------------------------------------------------------
def test_meta_model_equals_init_model():
    model = on_meta(gpt, **SIZE)
    plan = wi.materialize(model, device="cpu", seed=0)
    expected = reference(0)
    for name, param in model.named_parameters():
        assert param.device.type == "cpu"
        assert torch.equal(param, expected[name]), name
    assert model.head.weight is model.tokens.weight  # the tie survives allocation
    assert no_meta(model)
    assert [r.name for r in plan.rows] == [r.name for r in wi.init_model(
        gpt(**SIZE), dry_run=True).rows]
    assert any("Materialized on cpu" in note for note in plan.notes)
    assert any("4 residual branches" in note for note in plan.notes)


def test_meta_model_with_a_joint_scheme_equals_init_model():
    model = on_meta(gpt, **SIZE)
    wi.materialize(model, device="cpu", policy=ORTHOGONAL)
    for name, param in model.named_parameters():
        assert torch.equal(param, reference(0, ORTHOGONAL)[name]), name


def test_materialize_twice_reinitializes_like_init_model():
    model = on_meta(gpt, **SIZE)
    wi.materialize(model, device="cpu", seed=0)
    wi.materialize(model, device="cpu", seed=1)
    expected = reference(1)
    assert all(torch.equal(p, expected[n]) for n, p in model.named_parameters())


def test_batchnorm_buffers_and_padding_row():
    model = on_meta(nets.Padded)
    plan = wi.materialize(model, device="cpu", seed=2)
    normal = nets.Padded()
    wi.init_model(normal, seed=2)
    for (name, mine), (_, theirs) in zip(model.state_dict().items(),
                                         normal.state_dict().items(), strict=True):
        assert torch.equal(mine, theirs), name
    assert torch.equal(model.emb.weight[3], torch.zeros(8))
    assert model.bn.num_batches_tracked.dtype == torch.long
    assert any("reset_running_stats()" in note and "bn.running_mean" in note
               for note in plan.notes)


class Rotary(nn.Module):
    """A module whose buffer is computed in __init__ and again by reset_parameters()."""

    def __init__(self, dim: int = 8, with_reset: bool = True) -> None:
        super().__init__()
        self.dim = dim
        self.fc = nn.Linear(dim, dim)
        self.register_buffer("inv_freq", self._inv_freq(), persistent=False)
        if not with_reset:
            self.reset_parameters = None  # type: ignore[assignment]

    def _inv_freq(self) -> torch.Tensor:
        return 1.0 / 10000 ** (torch.arange(0, self.dim, 2, dtype=torch.float32) / self.dim)

    def reset_parameters(self) -> None:  # type: ignore[no-redef]
        with torch.no_grad():
            self.inv_freq.copy_(self._inv_freq())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.inv_freq.repeat(2)


def test_buffer_recomputed_by_reset_parameters():
    model = on_meta(Rotary)
    plan = wi.materialize(model, device="cpu")
    assert torch.equal(model.inv_freq, Rotary().inv_freq)
    assert any("Rotary.reset_parameters()" in note for note in plan.notes)


class Garbage(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("mask", torch.tril(torch.ones(4, 4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) @ self.mask


def test_buffer_nobody_recomputes_is_refused_and_nothing_changes():
    model = on_meta(Garbage)
    before = {n: t for n, t in [*model.named_parameters(), *model.named_buffers()]}
    with pytest.raises(wi.InitError) as info:
        wi.materialize(model, device="cpu")
    message = str(info.value)
    assert "'mask' (shape (4, 4); Garbage has no reset_parameters())" in message
    assert "buffers={name: tensor}" in message and "Nothing was changed" in message
    after = {n: t for n, t in [*model.named_parameters(), *model.named_buffers()]}
    assert all(after[n] is t for n, t in before.items()) and all_meta(model)


def test_buffers_argument_supplies_the_values():
    model = on_meta(Garbage)
    mask = torch.tril(torch.ones(4, 4))
    plan = wi.materialize(model, device="cpu", buffers={"mask": mask})
    assert torch.equal(model.mask, mask) and model.mask.data_ptr() != mask.data_ptr()
    assert any("given in `buffers`" in note for note in plan.notes)
    assert no_meta(model)


@pytest.mark.parametrize("kwargs, words", [
    ({"device": "meta"}, ["`device` is 'meta'"]),
    ({"device": "nowhere"}, ["`device`", "'nowhere'"]),
    ({"device": "cpu", "seed": -1}, ["`seed`", "-1"]),
    ({"device": "cpu", "policy": "lsuv"}, ["'lsuv'", "wi.lsuv(model, batch)"]),
    ({"device": "cpu", "policy": "atuo"}, ["`policy` 'atuo'", "Did you mean 'auto'"]),
    ({"device": "cpu", "buffers": {"mask": torch.ones(4, 4)}}, ["`buffers` names 'mask'",
                                                                "Meta buffers: none"]),
    ({"device": "cpu", "buffers": [1]}, ["`buffers` must be a dict"]),
    ({"device": "cpu", "example_inputs": (torch.zeros(2, 9),)}, ["example_inputs"]),
])
def test_bad_arguments_are_refused_and_nothing_changes(kwargs, words):
    model = on_meta(lambda: nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)))
    params = list(model.parameters())
    with pytest.raises(wi.InitError) as info:
        wi.materialize(model, **kwargs)
    for word in words:
        assert word in str(info.value)
    assert all(a is b for a, b in zip(model.parameters(), params, strict=True))
    assert all_meta(model)


def test_bad_buffer_value_is_refused():
    model = on_meta(Garbage)
    with pytest.raises(wi.InitError, match=r"`buffers\['mask'\]` must be a tensor .* \(4, 4\)"):
        wi.materialize(model, device="cpu", buffers={"mask": torch.ones(3)})
    assert all_meta(model)


def test_a_kept_meta_parameter_is_refused_and_a_rule_fixes_it():
    model = on_meta(nets.Scaled)
    with pytest.raises(wi.InitError) as info:
        wi.materialize(model, device="cpu")
    assert "'scale' (shape (4,), role 'unknown') would be allocated but not filled" in str(
        info.value)
    assert all_meta(model)
    policy = wi.Policy([wi.Rule(wi.Ones(), name="scale"), wi.Policy.preset("auto")])
    wi.materialize(model, device="cpu", policy=policy)
    assert torch.equal(model.scale, torch.ones(4)) and no_meta(model)


def test_not_a_module_is_refused():
    with pytest.raises(wi.InitError, match=r"`model` must be a torch\.nn\.Module"):
        wi.materialize("gpt", device="cpu")  # type: ignore[arg-type]


# --- Hugging Face transformers built on meta ----------------------------------------------------
@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def _transformers():  # the [hf] extra: these tests skip without it
    return pytest.importorskip(
        "transformers", reason="the [hf] extra (pip install 'weightinit[hf]') is not installed")


def hf_gpt2() -> nn.Module:
    transformers = _transformers()
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=128, n_positions=64, bos_token_id=0,
        eos_token_id=0))


def hf_llama() -> nn.Module:
    transformers = _transformers()
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=2,
        num_key_value_heads=1, vocab_size=128, max_position_embeddings=64))


@pytest.mark.parametrize("factory", [hf_gpt2, hf_llama], ids=["gpt2", "llama"])
def test_transformers_on_meta(factory):
    model = on_meta(factory)
    assert any(True for _ in model.buffers()) == (factory is hf_llama)
    plan = wi.materialize(model, device="cpu", seed=5)
    assert no_meta(model)
    normal = factory()
    wi.init_model(normal, seed=5)
    mine, theirs = dict(model.named_buffers()), dict(normal.named_buffers())
    assert mine.keys() == theirs.keys()
    for name, buffer in theirs.items():  # rotary inv_freq and original_inv_freq
        assert torch.equal(mine[name], buffer), name
    for name, param in normal.named_parameters():
        assert torch.equal(dict(model.named_parameters())[name], param), name
    if factory is hf_gpt2:  # GPT-2 ties its output head; this Llama config does not
        assert model.lm_head.weight is model.get_input_embeddings().weight
    if factory is hf_llama:
        assert any("transformers' _init_weights" in note and "inv_freq" in note
                   for note in plan.notes)
    ids = torch.randint(0, 128, (2, 8), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(model(ids).logits).all()
