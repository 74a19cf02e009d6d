"""init_model on real architectures: Hugging Face transformers built from small configs (offline,
never from_pretrained) and torch's own recurrent and attention layers. Every parameter has a row,
the columns (role, activation, source, fans, residual) match the known architecture, tied weights
are filled once, the forward pass stays finite and O(1), and discovery has no side effects. Also
`weightinit plan` on a transformers factory file."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

import weightinit as wi
from weightinit.cli import main

transformers = pytest.importorskip(
    "transformers", reason="the [hf] extra (pip install 'weightinit[hf]') is not installed")

VOCAB, HIDDEN, INTER, LAYERS = 128, 32, 64, 2
N_BRANCHES = 2 * LAYERS  # attention + MLP per layer
CONSTANT_SPECS = (wi.Zeros, wi.Ones, wi.Constant, wi.BlockConstant)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


# --- the models ----------------------------------------------------------------------------------
def gpt2(**options) -> nn.Module:
    config = transformers.GPT2Config(n_layer=LAYERS, n_embd=HIDDEN, n_head=2, vocab_size=VOCAB,
                                     n_positions=64, bos_token_id=0, eos_token_id=0, **options)
    return transformers.GPT2LMHeadModel(config)


def llama(**options) -> nn.Module:
    config = transformers.LlamaConfig(num_hidden_layers=LAYERS, hidden_size=HIDDEN,
                                      intermediate_size=INTER, num_attention_heads=2,
                                      num_key_value_heads=1, vocab_size=VOCAB,
                                      max_position_embeddings=64, **options)
    return transformers.LlamaForCausalLM(config)


def bert(**options) -> nn.Module:
    config = transformers.BertConfig(num_hidden_layers=LAYERS, hidden_size=HIDDEN,
                                     intermediate_size=INTER, num_attention_heads=2,
                                     vocab_size=VOCAB, max_position_embeddings=64, **options)
    return transformers.BertForMaskedLM(config)


def vit(image_size: int = 32, **options) -> nn.Module:
    config = transformers.ViTConfig(num_hidden_layers=LAYERS, hidden_size=HIDDEN,
                                    intermediate_size=INTER, num_attention_heads=2,
                                    image_size=image_size, patch_size=8, num_channels=3,
                                    **options)
    return transformers.ViTModel(config)


def token_ids() -> torch.Tensor:
    return torch.randint(1, VOCAB, (2, 16), generator=torch.Generator().manual_seed(1))


def pixels(size: int = 32) -> torch.Tensor:
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))


MODELS: dict[str, tuple[Callable[[], nn.Module], Callable[[], torch.Tensor]]] = {
    "gpt2": (gpt2, token_ids), "llama": (llama, token_ids), "bert": (bert, token_ids),
    "vit": (vit, pixels),
}
model_names = pytest.mark.parametrize("name", list(MODELS))


def init(name: str, model: nn.Module, policy: str = "auto", **options) -> wi.InitPlan:
    """`wi.init_model`; ViT's first parameterized module is ViTEmbeddings (the class token), so
    no input is synthesized for it: it gets its pixels."""
    if name == "vit":
        options.setdefault("example_inputs", (pixels(),))
    return wi.init_model(model, policy, **options)


def all_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_parameters(remove_duplicate=False)]


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    tensors = {f"param:{n}": p for n, p in model.named_parameters(remove_duplicate=False)}
    tensors.update({f"buffer:{n}": b for n, b in model.named_buffers(remove_duplicate=False)})
    return {name: t.detach().clone() for name, t in tensors.items()}


def assert_same(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> None:
    assert before.keys() == after.keys()
    for name in before:
        assert before[name].dtype == after[name].dtype, name
        assert torch.equal(before[name], after[name]), name


def rows_by_name(plan: wi.InitPlan) -> dict[str, wi.PlanRow]:
    return {row.name: row for row in plan}


def residual_names(plan: wi.InitPlan) -> set[str]:
    return {row.name for row in plan if row.residual}


def rms(t: torch.Tensor) -> float:
    return float(t.double().pow(2).mean().sqrt())


def run_forward(model: nn.Module, inputs: torch.Tensor):
    with torch.no_grad():
        return model(inputs, output_hidden_states=True)


# --- every parameter has a row -------------------------------------------------------------------
@model_names
def test_every_parameter_has_exactly_one_row(name):
    build, _ = MODELS[name]
    model = build()
    plan = init(name, model, dry_run=True)
    named = [n for row in plan for n in (row.name, *row.aliases)]
    assert len(named) == len(set(named)), "a name appears in two rows"
    assert set(named) == set(all_names(model))
    assert len(plan) == len(list(model.parameters()))  # one row per distinct tensor
    for row in plan:
        param = plan_param(model, row.name)
        assert row.shape == tuple(param.shape)
        if row.role == "unknown":
            assert row.kept and row.note, row
    # Under "auto" nothing known is kept; nothing here is unknown.
    assert [row.name for row in plan if row.kept or row.role == "unknown"] == []
    # The forward pass ran: every layer has a known feed and was called.
    assert plan.notes[0].startswith("Dataflow from one forward pass (real) on ")
    assert {row.activation for row in plan}.isdisjoint({"unknown", "unused"})
    assert f"{N_BRANCHES} residual branches found." in plan.notes


def plan_param(model: nn.Module, name: str) -> torch.Tensor:
    return dict(model.named_parameters(remove_duplicate=False))[name]


@model_names
def test_forward_is_finite_under_the_other_presets(name):
    """("auto" is checked below, with the size of the hidden states; keras and flax draw like
    torch, from fixed ranges.)"""
    build, make_inputs = MODELS[name]
    inputs = make_inputs()
    model = build().eval()
    for policy in ("torch", "gpt2", "fixup"):
        init(name, model, policy)
        out = run_forward(model, inputs)
        for state in out.hidden_states:
            assert torch.isfinite(state).all(), (policy, name)
        logits = getattr(out, "logits", None)
        if logits is not None:
            assert torch.isfinite(logits).all(), (policy, name)


@model_names
def test_auto_keeps_hidden_states_order_one(name):
    build, make_inputs = MODELS[name]
    model = build().eval()
    init(name, model)
    out = run_forward(model, make_inputs())
    values = [rms(h) for h in out.hidden_states]
    logits = getattr(out, "logits", None)
    if logits is not None:
        values.append(rms(logits))
    assert len(values) == LAYERS + 1 + (logits is not None)
    assert all(0.1 < v < 10 for v in values), values  # finite, and O(1)


@model_names
def test_same_seed_same_weights_other_seed_other_weights(name):
    build, _ = MODELS[name]
    # Construction draws from the global RNG; the keyed fill must not depend on it.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        first = build()
        torch.manual_seed(123)
        second = build()
        third = build()
    plan = init(name, first, seed=7)
    init(name, second, seed=7)
    init(name, third, seed=8)
    a, b, c = first.state_dict(), second.state_dict(), third.state_dict()
    assert a.keys() == b.keys() == c.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for row in plan:
        if isinstance(row.spec, CONSTANT_SPECS):
            assert torch.equal(a[row.name], c[row.name]), row.name
        else:
            assert not torch.equal(a[row.name], c[row.name]), row.name


def test_a_saved_plan_gives_a_fresh_model_the_same_tensors():
    model, fresh = gpt2(), gpt2()
    plan = wi.init_model(model, seed=4, example_inputs=(token_ids(),))
    text = plan.to_json()
    again = wi.InitPlan.from_json(text)
    assert again.rows == plan.rows and (again.seed, again.policy) == (4, "auto")
    again.apply(fresh)
    assert_same(snapshot(model), snapshot(fresh))
    assert fresh.lm_head.weight is fresh.transformer.wte.weight  # still tied


# --- tied weights --------------------------------------------------------------------------------
@pytest.mark.parametrize(("build", "canonical", "alias"), [
    (gpt2, "transformer.wte.weight", "lm_head.weight"),
    (bert, "bert.embeddings.word_embeddings.weight", "cls.predictions.decoder.weight"),
    (lambda: llama(tie_word_embeddings=True), "model.embed_tokens.weight", "lm_head.weight"),
], ids=["gpt2", "bert", "llama-tied"])
def test_tied_embedding_is_one_row_filled_once(build, canonical, alias):
    model = build()
    params = dict(model.named_parameters(remove_duplicate=False))
    assert params[canonical] is params[alias]
    plan = wi.init_model(model, seed=3)
    row = plan[alias]
    assert row is plan[canonical]
    assert row.name == canonical and row.aliases == (alias,)
    assert row.role == "embedding"
    # Tied to an output layer: N(0, 1/dim), so the logits have unit variance.
    assert isinstance(row.spec, wi.Normal)
    assert row.std == pytest.approx(1 / math.sqrt(HIDDEN))
    after = dict(model.named_parameters(remove_duplicate=False))
    assert after[canonical] is after[alias] is params[canonical]  # still tied, same object
    assert after[canonical].data_ptr() == after[alias].data_ptr()
    assert torch.equal(after[canonical], after[alias])
    # Filled once, from the stream keyed by the canonical name (not the alias).
    expected = row.spec.fill_(torch.empty(row.shape), seed=3, key=canonical)
    padding = row.padding_idx
    if padding is not None:
        expected[padding] = 0
    assert torch.equal(after[canonical].detach(), expected)


def test_untied_llama_head_is_its_own_linear_row():
    plan = wi.init_model(llama(), dry_run=True)
    head = plan["lm_head.weight"]
    assert head.aliases == () and head.role == "linear.weight"
    assert head.activation == "linear" and "model.norm" in head.source
    assert plan.rows[-1] is head  # execution order: the head runs last
    assert plan["model.embed_tokens.weight"].std == pytest.approx(1.0)


def test_bert_padding_row_is_zero_and_decoder_bias_is_tied():
    model = bert()
    plan = wi.init_model(model)
    embedding = model.bert.embeddings.word_embeddings
    assert embedding.padding_idx == 0
    assert torch.count_nonzero(embedding.weight[0]) == 0
    assert torch.count_nonzero(embedding.weight[1:]) > 0
    bias = plan["cls.predictions.decoder.bias"]
    assert {bias.name, *bias.aliases} == {"cls.predictions.bias", "cls.predictions.decoder.bias"}
    assert bias.role == "linear.bias" and isinstance(bias.spec, wi.Zeros)


# --- the columns, against the known architectures ------------------------------------------------
def fans(row: wi.PlanRow) -> tuple[int, int]:
    assert row.fans is not None, row.name
    return row.fans.fan_in, row.fans.fan_out


def test_gpt2_columns():
    plan = wi.init_model(gpt2(), dry_run=True)
    rows = rows_by_name(plan)
    assert plan.rows[0].name == "transformer.wte.weight"
    assert rows["transformer.wte.weight"].role == "embedding"
    assert rows["transformer.wpe.weight"].role == "pos_embedding"
    expected_residual = set()
    for i in range(LAYERS):
        h = f"transformer.h.{i}"
        c_attn = rows[f"{h}.attn.c_attn.weight"]
        assert c_attn.role == "qkv.weight" and c_attn.layer == "Conv1D"
        assert fans(c_attn) == (HIDDEN, HIDDEN)  # per q/k/v block, from the (in, 3*out) layout
        assert rows[f"{h}.attn.c_attn.bias"].role == "qkv.bias"
        for layer, norm in (("attn.c_attn", "ln_1"), ("mlp.c_fc", "ln_2")):
            row = rows[f"{h}.{layer}.weight"]
            assert row.activation == "linear", row
            assert "LayerNorm" in row.source and f"{h}.{norm}" in row.source, row
        assert fans(rows[f"{h}.mlp.c_fc.weight"]) == (HIDDEN, 4 * HIDDEN)
        attn_proj = rows[f"{h}.attn.c_proj.weight"]
        assert attn_proj.role == "linear.weight" and attn_proj.activation == "linear"
        mlp_proj = rows[f"{h}.mlp.c_proj.weight"]
        assert mlp_proj.activation == "gelu(approximate='tanh')"  # gelu_new
        assert mlp_proj.source == f"Conv1D {h}.mlp.c_fc"
        assert fans(mlp_proj) == (4 * HIDDEN, HIDDEN)
        expected_residual |= {attn_proj.name, mlp_proj.name}
    assert residual_names(plan) == expected_residual
    assert f"{N_BRANCHES} residual branches found." in plan.notes


def test_gpt2_stds_under_auto_and_gpt2_presets():
    auto = rows_by_name(wi.init_model(gpt2(), dry_run=True))
    tanh_gelu = wi.gain("gelu", params={"approximate": "tanh"})
    for i in range(LAYERS):
        h = f"transformer.h.{i}"
        assert auto[f"{h}.attn.c_attn.weight"].std == pytest.approx(1 / math.sqrt(HIDDEN))
        assert auto[f"{h}.attn.c_proj.weight"].std == pytest.approx(
            1 / math.sqrt(HIDDEN * N_BRANCHES))
        assert auto[f"{h}.mlp.c_proj.weight"].std == pytest.approx(
            tanh_gelu / math.sqrt(4 * HIDDEN * N_BRANCHES))
        assert isinstance(auto[f"{h}.ln_1.weight"].spec, wi.Ones)
    # transformers' own GPT-2 init: N(0, 0.02), the residual projections / sqrt(2 n_layer).
    preset = wi.init_model(gpt2(), "gpt2", dry_run=True)
    assert preset.policy == "gpt2"
    for row in preset:
        if row.role.endswith("bias"):
            assert isinstance(row.spec, wi.Zeros), row
        elif row.role.startswith("norm"):
            assert isinstance(row.spec, wi.Ones), row
        elif row.residual:
            assert row.std == pytest.approx(0.02 / math.sqrt(2 * LAYERS)), row
        else:
            assert row.std == pytest.approx(0.02), row


def test_llama_columns():
    model = llama()
    plan = wi.init_model(model, dry_run=True)
    rows = rows_by_name(plan)
    head_dim = HIDDEN // 2
    expected_residual = set()
    for i in range(LAYERS):
        layer = f"model.layers.{i}"
        for proj, norm in (("self_attn.q_proj", "input_layernorm"),
                           ("self_attn.k_proj", "input_layernorm"),
                           ("self_attn.v_proj", "input_layernorm"),
                           ("mlp.gate_proj", "post_attention_layernorm"),
                           ("mlp.up_proj", "post_attention_layernorm")):
            row = rows[f"{layer}.{proj}.weight"]
            assert row.activation == "linear", row
            assert "RMSNorm" in row.source and f"{layer}.{norm}" in row.source, row
        assert fans(rows[f"{layer}.self_attn.k_proj.weight"]) == (HIDDEN, head_dim)  # one kv head
        o_proj = rows[f"{layer}.self_attn.o_proj.weight"]
        assert o_proj.activation == "linear"
        down = rows[f"{layer}.mlp.down_proj.weight"]
        assert down.activation == "silu*linear"  # the SwiGLU gated unit
        assert f"{layer}.mlp.gate_proj" in down.source and f"{layer}.mlp.up_proj" in down.source
        # Gated unit: moment E[silu^2] * E[z^2]; branch end: / sqrt(N).
        assert down.std == pytest.approx(wi.gain("silu") / math.sqrt(INTER * N_BRANCHES))
        assert rows[f"{layer}.input_layernorm.weight"].role == "norm.weight"
        expected_residual |= {o_proj.name, down.name}
    assert residual_names(plan) == expected_residual
    assert f"{N_BRANCHES} residual branches found." in plan.notes


def test_bert_columns():
    plan = wi.init_model(bert(), dry_run=True)
    rows = rows_by_name(plan)
    emb = "bert.embeddings"
    assert rows[f"{emb}.word_embeddings.weight"].role == "embedding"
    assert rows[f"{emb}.position_embeddings.weight"].role == "pos_embedding"
    assert rows[f"{emb}.token_type_embeddings.weight"].role == "embedding"
    expected_residual = set()
    for i in range(LAYERS):
        layer = f"bert.encoder.layer.{i}"
        fed_by = f"{emb}.LayerNorm" if i == 0 else f"bert.encoder.layer.{i - 1}.output.LayerNorm"
        for qkv in ("query", "key", "value"):
            row = rows[f"{layer}.attention.self.{qkv}.weight"]
            assert row.activation == "linear" and row.source == f"LayerNorm {fed_by}", row
        attn_out = rows[f"{layer}.attention.output.dense.weight"]
        assert attn_out.activation == "linear"
        out = rows[f"{layer}.output.dense.weight"]
        assert out.activation == "gelu"
        assert out.source == f"Linear {layer}.intermediate.dense"
        assert rows[f"{layer}.intermediate.dense.weight"].source == (
            f"LayerNorm {layer}.attention.output.LayerNorm")
        expected_residual |= {attn_out.name, out.name}
    assert residual_names(plan) == expected_residual
    assert f"{N_BRANCHES} residual branches found." in plan.notes


def test_bert_keyword_inputs_give_the_same_plan():
    ids = token_ids()
    synthesized = wi.init_model(bert(), dry_run=True)
    given = wi.init_model(bert(), dry_run=True, example_inputs={
        "input_ids": ids, "attention_mask": torch.ones_like(ids)})
    assert given.notes[0].endswith("on example_inputs.")
    columns = [(r.name, r.role, r.activation, r.source, r.residual, r.std) for r in synthesized]
    assert columns == [(r.name, r.role, r.activation, r.source, r.residual, r.std)
                       for r in given]


def test_vit_columns():
    plan = init("vit", vit(), dry_run=True)
    assert plan.notes[0] == "Dataflow from one forward pass (real) on example_inputs."
    rows = rows_by_name(plan)
    assert rows["embeddings.cls_token"].role == "class_token"
    assert rows["embeddings.position_embeddings"].role == "pos_embedding"
    projection = rows["embeddings.patch_embeddings.projection.weight"]
    assert projection.role == "conv.weight"
    assert projection.fans is not None and projection.fans.fan_in == 3 * 8 * 8
    assert projection.activation == "linear" and projection.source == "input"
    assert rows["embeddings.patch_embeddings.projection.bias"].role == "conv.bias"
    residual = [row for row in plan if row.residual]
    assert len(residual) == N_BRANCHES
    assert all(row.role == "linear.weight" for row in residual)
    # Per layer: the attention output projection (linear) and the MLP's second layer (gelu).
    assert sorted(row.activation for row in residual) == ["gelu", "gelu", "linear", "linear"]
    for row in residual:
        if row.activation == "gelu":
            assert row.source.startswith("Linear ") and row.source.split()[1].startswith(
                row.module.rsplit(".", 1)[0])
    assert f"{N_BRANCHES} residual branches found." in plan.notes


def test_vit_needs_example_inputs():
    model = vit(image_size=64)
    with pytest.warns(wi.InitWarning, match="no forward pass ran"):
        plan = wi.init_model(model, dry_run=True)  # the first layer (a class token): nothing
    assert plan.notes[0].startswith("No forward pass")
    assert "pass example_inputs=" in plan.notes[0]
    assert {row.activation for row in plan} == {"unknown"}
    assert {n for row in plan for n in (row.name, *row.aliases)} == set(all_names(model))
    plan = wi.init_model(model, example_inputs=(pixels(64),))
    assert plan.notes[0] == "Dataflow from one forward pass (real) on example_inputs."
    assert len([row for row in plan if row.residual]) == N_BRANCHES
    assert torch.isfinite(run_forward(model.eval(), pixels(64)).last_hidden_state).all()


@pytest.mark.parametrize("build", [gpt2, llama], ids=["gpt2", "llama"])
def test_padded_mask_runs_for_real_with_the_same_columns_and_no_side_effects(build):
    ids = token_ids()
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # left padding: sdpa's mask code looks at the values, so meta cannot run it
    model = build()
    before, rng = snapshot(model), torch.get_rng_state()
    plan = wi.init_model(model, example_inputs={"input_ids": ids, "attention_mask": mask},
                         dry_run=True)
    assert plan.notes[0] == "Dataflow from one forward pass (real) on example_inputs."
    assert_same(before, snapshot(model))
    assert torch.equal(torch.get_rng_state(), rng)
    synthesized = wi.init_model(model, dry_run=True)
    assert [(r.name, r.activation, r.source, r.residual, r.std) for r in plan] == [
        (r.name, r.activation, r.source, r.residual, r.std) for r in synthesized]


# --- no side effects -----------------------------------------------------------------------------
def flags(model: nn.Module) -> list[tuple[str, bool]]:
    return [(name, module.training) for name, module in model.named_modules()]


@model_names
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_dry_run_changes_nothing(name, mode):
    build, _ = MODELS[name]
    model = build()
    model.train(mode == "train")
    before, modes = snapshot(model), flags(model)
    rng = torch.get_rng_state()
    init(name, model, dry_run=True)
    assert_same(before, snapshot(model))
    assert flags(model) == modes
    assert torch.equal(torch.get_rng_state(), rng)


def test_buffers_survive_discovery_and_init():
    for build in (llama, bert):
        model = build()
        buffers = {n: b for n, b in model.named_buffers()}
        assert buffers  # rotary inv_freq; position_ids, token_type_ids
        copies = {n: b.clone() for n, b in buffers.items()}
        wi.init_model(model)
        for n, b in model.named_buffers():
            assert b is buffers[n] and torch.equal(b, copies[n]), n


def test_init_keeps_parameter_objects_flags_grads_and_global_rng():
    model = gpt2()
    model.train()
    loss = model(token_ids(), labels=token_ids()).loss
    loss.backward()
    params = dict(model.named_parameters())
    grads = {n: p.grad.clone() for n, p in params.items()}
    modes = flags(model)
    model.transformer.h[1].mlp.c_fc.weight.requires_grad_(False)
    rng = torch.get_rng_state()
    before = snapshot(model)
    plan = wi.init_model(model, seed=5)
    assert torch.equal(torch.get_rng_state(), rng)
    assert flags(model) == modes
    after = dict(model.named_parameters())
    assert after.keys() == params.keys()
    frozen = "transformer.h.1.mlp.c_fc.weight"
    for n, p in after.items():
        assert p is params[n], n  # filled in place: optimizers keep working
        assert torch.equal(p.grad, grads[n]), n
        if n == frozen:  # a frozen parameter is the model's own: kept, and the plan says so
            assert torch.equal(p.detach(), before[f"param:{n}"])
            assert plan[n].kept and "frozen" in plan[n].note
        else:
            assert not torch.equal(p.detach(), before[f"param:{n}"]) or n.endswith(
                "bias") or ("ln_" in n), n
    assert not model.transformer.h[1].mlp.c_fc.weight.requires_grad


# --- the CLI on a transformers factory -----------------------------------------------------------
FACTORY = '''
import torch
import transformers
from torch import nn


def build():
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=128,
                                     n_positions=64, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config)


def mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def broken():
    raise RuntimeError("boom")


def not_a_module():
    return 42


CONSTANT = 3
'''


@pytest.fixture
def factory(tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(FACTORY)
    return path


def test_cli_plan_json_on_a_transformers_factory(factory, capsys):
    assert main(["plan", f"{factory}:build", "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    model = gpt2()
    assert data["policy"] == "auto" and data["seed"] == 0
    assert len(data["rows"]) == len(list(model.parameters()))
    names = [n for row in data["rows"] for n in (row["name"], *row["aliases"])]
    assert sorted(names) == sorted(all_names(model))
    rows = {row["name"]: row for row in data["rows"]}
    assert rows["transformer.wte.weight"]["aliases"] == ["lm_head.weight"]
    assert rows["transformer.h.0.attn.c_attn.weight"]["role"] == "qkv.weight"
    assert rows["transformer.h.0.mlp.c_proj.weight"]["residual"] is True
    assert "4 residual branches found." in data["notes"]
    # The same plan as the library call.
    assert data == json.loads(wi.init_model(model, dry_run=True).to_json())


def test_cli_plan_table(factory, capsys):
    assert main(["plan", f"{factory}:build", "--width", "200"]) == 0
    out = capsys.readouterr().out
    assert "c_attn" in out and "lm_head.weight" in out
    assert "residual" in out and "4 residual branches found." in out
    assert "gelu(approximate='tanh')" in out


def test_cli_plan_gpt2_policy_and_input_shape(factory, capsys):
    assert main(["plan", f"{factory}:build", "--policy", "gpt2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["policy"] == "gpt2"
    rows = {row["name"]: row for row in data["rows"]}
    assert rows["transformer.h.1.attn.c_proj.weight"]["std"] == pytest.approx(0.01)
    assert rows["transformer.h.1.attn.c_attn.weight"]["std"] == pytest.approx(0.02)
    assert main(["plan", f"{factory}:build", "--input-shape", "2,8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["notes"][0].endswith("on example_inputs.")


def test_cli_plan_on_a_plain_torch_factory(factory, capsys):
    assert main(["plan", f"{factory}:mlp", "--json", "--seed", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["seed"] == 3
    assert [row["name"] for row in data["rows"]] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert data["rows"][2]["activation"] == "relu"


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("weightinit: error:"), lines[0]
    return lines[0]


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code) if exc.code is not None else 0


@pytest.mark.parametrize(("target", "extra", "code", "says"), [
    ("{path}:nope", [], 1, "no attribute 'nope'"),
    ("{dir}/missing.py:build", [], 1, "no such file"),
    ("{path}:broken", [], 1, "RuntimeError: boom"),
    ("{path}:not_a_module", [], 1, "not a torch.nn.Module"),
    ("{path}:CONSTANT", [], 1, "not a callable factory"),
    ("{path}", [], 1, "MODULE:FACTORY"),
    ("{path}:build", ["--input-shape", "a,b"], 2, "--input-shape"),
    ("{path}:build", ["--input-shape", "0,3"], 2, "--input-shape"),
    ("{path}:build", ["--policy", "gtp2"], 1, "Did you mean 'gpt2'?"),
    ("{path}:mlp", ["--input-shape", "4,7"], 1, "forward pass"),
], ids=["bad-factory", "missing-file", "factory-raises", "not-a-module", "not-callable",
        "no-colon", "shape-letters", "shape-zero", "unknown-policy", "inputs-rejected"])
def test_cli_plan_errors_are_one_line(factory, capsys, target, extra, code, says):
    argv = ["plan", target.format(path=factory, dir=factory.parent), *extra]
    assert exit_code(argv) == code
    line = one_error_line(capsys)
    assert says in line, line
