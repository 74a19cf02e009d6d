"""One regression test per defect `auto` had on the zoo (issue 13's table): each checks the
behaviour that was wrong, by reading the model the way its authors' code uses it.

Tolerances: stds and values are read from the plan (exact closed forms) or compared bit for
bit; measured RMS ratios use a factor-of-2 band, far wider than the sampling error of a
2 x 16 x 32 batch (a few percent)."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
import zoo_models as zoo
from torch import nn

import weightinit as wi

pytest.importorskip("transformers", reason="the [hf] extra is not installed")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def built(name: str) -> tuple[nn.Module, dict]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return zoo.ZOO[name].build()


def output_rms(module: nn.Module, model: nn.Module, inputs: dict) -> float:
    """The RMS of `module`'s first tensor output in an eval forward of `model`."""
    seen = {}

    def hook(_m, _i, out):
        seen["out"] = out[0] if isinstance(out, tuple) else out

    handle = module.register_forward_hook(hook)
    try:
        model.eval()
        with torch.no_grad():
            model(**inputs)
    finally:
        handle.remove()
    return float(seen["out"].float().pow(2).mean().sqrt())


# --- Gemma: norms compute x_hat * (1 + w) ------------------------------------------------------
@pytest.mark.parametrize("name", ["gemma", "gemma2", "gemma3"])
def test_offset_norms_start_at_zero_weight(name):
    model, inputs = built(name)
    plan = wi.init_model(model, example_inputs=inputs)
    branches = int(next(n for n in plan.notes if "residual branches" in n).split()[0])
    for row in plan:
        if row.role != "norm.weight":
            continue
        weight = model.get_parameter(row.name)
        # effective scale 1 (0 + 1), or 1/sqrt(N) at a branch end: w = 1/sqrt(N) - 1
        expected = 1.0 / math.sqrt(branches) - 1.0 if row.residual else 0.0
        assert torch.allclose(weight, torch.full_like(weight, expected)), (row.name, weight[:3])


def test_offset_norms_are_measured_on_a_meta_built_model_too():
    import transformers

    config = transformers.Gemma2Config(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16)
    with torch.device("meta"):
        model = transformers.Gemma2ForCausalLM(config)
    wi.materialize(model, device="cpu")
    layer = model.model.layers[0]
    assert torch.equal(layer.input_layernorm.weight, torch.zeros(32))
    assert torch.equal(layer.post_attention_layernorm.weight, torch.full((32,), -0.5))


def test_an_offset_norm_is_measured_not_named():
    class OffsetRMSNorm(nn.Module):  # any name: what matters is the (1 + w) in its forward
        def __init__(self, dim):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(dim))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * (1 + self.weight)

    model = nn.Sequential(nn.Linear(8, 16), OffsetRMSNorm(16), nn.Linear(16, 4))
    plan = wi.init_model(model)
    assert plan["1.weight"].spec == wi.Zeros() and torch.equal(model[1].weight, torch.zeros(16))


# --- MoE: experts are 3-d weights used through grouped matmuls; the router only chooses ---------
@pytest.mark.parametrize("name", ["mixtral", "qwen3_moe"])
def test_experts_are_initialized_like_a_dense_mlp(name):
    model, inputs = built(name)
    own = copy.deepcopy(model)
    plan = wi.init_model(model, example_inputs=inputs)
    layer = model.model.layers[0]
    for attr in ("gate_up_proj", "down_proj"):
        row = plan[f"model.layers.0.mlp.experts.{attr}"]
        shape = row.shape  # (experts, out, in): one expert's fan_in is the last dim
        assert row.role == "linear.weight" and row.fans.fan_in == shape[-1], row
    assert plan["model.layers.0.mlp.experts.down_proj"].residual
    assert not plan["model.layers.0.mlp.experts.gate_up_proj"].residual
    router = plan["model.layers.0.mlp.gate.weight"]
    assert "router" in router.rule
    hidden = router.shape[1]
    assert router.std == pytest.approx(math.sqrt(0.1 / hidden))  # Switch's scale 0.1
    # The MoE branch is on the attention branch's scale (it was 500x below it).
    ratio = output_rms(layer.mlp, model, inputs) / output_rms(layer.self_attn, model, inputs)
    assert 0.1 < ratio < 10, ratio
    own_ratio = output_rms(own.model.layers[0].mlp, own, inputs) / output_rms(
        own.model.layers[0].self_attn, own, inputs)
    assert ratio > own_ratio / 10


# --- Mamba: dt_proj and conv1d used functionally; A_log, D and the dt bias are the authors' ----
def test_mamba_keeps_its_structured_parameters_and_reads_functional_uses():
    model, inputs = built("mamba")
    own = copy.deepcopy(model)
    plan = wi.init_model(model, example_inputs=inputs)
    prefix = "backbone.layers.0.mixer"
    for name in ("A_log", "D", "dt_proj.bias"):
        row = plan[f"{prefix}.{name}"]
        assert row.kept and row.note, row
        assert torch.equal(model.get_parameter(row.name), own.get_parameter(row.name))
    softplus = torch.nn.functional.softplus(model.get_parameter(f"{prefix}.dt_proj.bias"))
    assert float(softplus.min()) < 0.05  # not 0.693 everywhere: dt spans [1e-3, 1e-1]
    for name in ("dt_proj.weight", "conv1d.weight"):
        row = plan[f"{prefix}.{name}"]
        assert row.activation != "unused" and row.spec is not None, row
    dt = plan[f"{prefix}.dt_proj.weight"]
    assert dt.fans.fan_in == dt.shape[1]  # dt_proj.weight @ x: contracts its last dim


# --- T5: no 1/sqrt(d) in attention, folded into q's init; its position bias is kept -------------
def test_t5_folds_the_attention_scale_into_q_and_keeps_its_position_bias():
    model, inputs = built("t5")
    own = copy.deepcopy(model)
    plan = wi.init_model(model, example_inputs=inputs)
    config = model.config
    q_rows = [row for row in plan if row.name.endswith(".q.weight")]
    assert len(q_rows) == 3 * config.num_layers  # encoder self, decoder self and cross
    for row in q_rows:  # T5's own rule: (d_model * d_kv) ** -0.5
        assert row.std == pytest.approx((config.d_model * config.d_kv) ** -0.5), row
    for row in plan:
        if "relative_attention_bias" in row.name:
            assert row.kept and torch.equal(model.get_parameter(row.name),
                                            own.get_parameter(row.name))


def test_sdpa_with_scale_one_is_an_unscaled_attention():
    class Attention(nn.Module):
        def __init__(self, dim=32, heads=2):
            super().__init__()
            self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))
            self.heads = heads

        def forward(self, x):
            b, s, d = x.shape

            def split(t):
                return t.view(b, s, self.heads, d // self.heads).transpose(1, 2)

            out = nn.functional.scaled_dot_product_attention(
                split(self.q(x)), split(self.k(x)), split(self.v(x)), scale=1.0)
            return out.transpose(1, 2).reshape(b, s, d)

    plan = wi.init_model(Attention(), example_inputs=(torch.randn(2, 8, 32),))
    head = 16
    assert plan["q.weight"].std == pytest.approx(1 / math.sqrt(32) / math.sqrt(head))
    assert plan["k.weight"].std == pytest.approx(1 / math.sqrt(32))


# --- Parallel residual: x + attn(ln1 x) + mlp(ln2 x) is two branches ----------------------------
@pytest.mark.parametrize("name", ["gpt_neox", "falcon"])
def test_a_parallel_residual_is_two_branches(name):
    model, inputs = built(name)
    plan = wi.init_model(model, example_inputs=inputs, dry_run=True)
    layers = model.config.num_hidden_layers
    assert f"{2 * layers} residual branches found." in plan.notes
    ends = [row.name for row in plan if row.residual]
    assert len(ends) == 2 * layers, ends


# --- GPT-2: learned positions on the tokens' scale ----------------------------------------------
def test_positions_share_the_token_embedding_scale():
    model, inputs = built("gpt2")
    plan = wi.init_model(model, example_inputs=inputs)
    wte, wpe = plan["transformer.wte.weight"], plan["transformer.wpe.weight"]
    assert wte.std == wpe.std == pytest.approx(1 / math.sqrt(model.config.n_embd))
    tokens = model.transformer.wte(inputs["input_ids"]).std()
    positions = model.transformer.wpe.weight[: inputs["input_ids"].shape[1]].std()
    assert 0.5 < float(positions / tokens) < 2


# --- Wrappers: torch.compile and DataParallel do not change keys or bits ------------------------
def _mlp() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))


@pytest.mark.parametrize("wrap", [torch.compile, nn.DataParallel], ids=["compile", "dp"])
def test_wrappers_are_transparent(wrap):
    bare, wrapped = _mlp(), wrap(_mlp())
    plan_bare = wi.init_model(bare, seed=4)
    plan_wrapped = wi.init_model(wrapped, seed=4, example_inputs=(torch.randn(3, 16),))
    assert [r.name for r in plan_wrapped] == [r.name for r in plan_bare]  # no _orig_mod.
    inner = wrapped._orig_mod if hasattr(wrapped, "_orig_mod") else wrapped.module
    for (name, a), b in zip(bare.named_parameters(), inner.parameters(), strict=True):
        assert torch.equal(a, b), name
    assert plan_wrapped["2.weight"].activation == "relu"


# --- Lazy modules: a clear refusal, nothing changed ---------------------------------------------
def test_a_lazy_module_is_refused_with_what_to_do():
    model = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 2))
    before = model[2].weight.clone()
    with pytest.raises(wi.InitError, match=r"'0.weight'.*run one forward pass"):
        wi.init_model(model)
    assert torch.equal(model[2].weight, before)


# --- weight_norm / spectral_norm: the weight is initialized through the parametrization --------
def test_weight_norm_weights_get_the_same_values_as_plain_layers():
    from torch.nn.utils.parametrizations import weight_norm

    bare = _mlp()
    normed = _mlp()
    normed[0], normed[2] = weight_norm(normed[0]), weight_norm(normed[2])
    wi.init_model(bare, seed=1)
    plan = wi.init_model(normed, seed=1)
    assert {"0.weight", "2.weight"} <= {row.name for row in plan}
    for i in (0, 2):
        assert torch.allclose(normed[i].weight, bare[i].weight, atol=1e-6)


def test_spectral_norm_originals_are_filled_and_sigma_is_fresh():
    from torch.nn.utils.parametrizations import spectral_norm

    bare, model = _mlp(), _mlp()
    model[0] = spectral_norm(model[0])
    u = model[0].parametrizations.weight[0]._u.clone()
    wi.init_model(model, seed=1, dry_run=True)
    assert torch.equal(model[0].parametrizations.weight[0]._u, u)  # a dry run changes nothing
    wi.init_model(bare, seed=1)
    wi.init_model(model, seed=1)
    original = model[0].parametrizations.weight.original
    assert torch.equal(original, bare[0].weight)
    model.eval()
    sigma = torch.linalg.matrix_norm(model[0].weight, ord=2)
    assert float(sigma) == pytest.approx(1.0, rel=1e-3)  # u, v describe the new weight


# --- Concatenations: the second moment of the whole input -------------------------------------
@pytest.mark.parametrize("relu_first", [True, False])
def test_a_concat_feed_is_the_channel_weighted_mean(relu_first):
    class Cat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 24), nn.Linear(8, 8)
            self.head = nn.Linear(32, 4)

        def forward(self, x):
            parts = [torch.relu(self.a(x)), self.b(x)]
            if not relu_first:
                parts = [self.b(x), torch.relu(self.a(x))]
            return self.head(torch.cat(parts, dim=-1))

    plan = wi.init_model(Cat())
    moment = (24 * 0.5 + 8 * 1.0) / 32  # relu's E[phi^2] is 1/2, linear's 1
    assert plan["head.weight"].std == pytest.approx(1 / math.sqrt(moment * 32))


# --- Build order does not change a value ------------------------------------------------------
def test_registration_order_is_not_execution_order():
    model, inputs = built("mlp_reversed")
    plan = wi.init_model(model, example_inputs=inputs)
    assert plan["fc2.weight"].activation == "relu" and plan.rows[0].name.startswith("fc1")


# --- No silent degradation --------------------------------------------------------------------
def test_no_forward_pass_is_a_warning_that_says_what_is_lost():
    model = nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.warns(wi.InitWarning, match="no forward pass ran.*LeCun"):
        wi.init_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wi.init_model(model, example_inputs=(torch.randn(2, 8),))


# --- What auto keeps, and why --------------------------------------------------------------------
def test_auto_keeps_what_the_model_marks_or_sets_deliberately():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 12))
    model[0].weight.requires_grad_(False)
    model[2].weight._no_reinit = True
    model[4].weight._is_hf_initialized = True
    with torch.no_grad():
        model[6].bias.fill_(-3.0)  # a deliberate offset
    before = {n: p.clone() for n, p in model.named_parameters()}
    plan = wi.init_model(model)
    for name, why in (("0.weight", "frozen"), ("2.weight", "_no_reinit"),
                      ("4.weight", "_is_hf_initialized"), ("6.bias", "deliberate offset")):
        assert plan[name].kept and why in plan[name].note, plan[name]
        assert torch.equal(model.get_parameter(name), before[name])
    assert not torch.equal(model[0].bias, before["0.bias"])  # a zero-mean random bias: zeroed
    assert torch.equal(model[0].bias, torch.zeros(16))


def test_a_rule_can_match_on_a_predicate():
    model = _mlp()
    policy = wi.Policy([wi.Rule(wi.Ones(), when=lambda info: info.name == "0.bias",
                                label="one bias"), wi.Policy.preset("auto")])
    plan = wi.init_model(model, policy)
    assert plan["0.bias"].rule.endswith("one bias") and torch.equal(model[0].bias,
                                                                   torch.ones(32))
    assert plan["2.bias"].spec == wi.Zeros()
    with pytest.raises(wi.InitError, match="`when` of a Rule"):
        wi.Rule(wi.Zeros(), when=3)


def test_a_structured_weight_gets_a_note_when_auto_replaces_it():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16))
    with torch.no_grad():
        model[0].weight.fill_(0.1)
    plan = wi.init_model(model, dry_run=True)
    assert "constant 0.1" in plan["0.weight"].note and plan["0.weight"].spec is not None
    assert plan["2.weight"].note == ""  # torch's own zero-mean uniform: nothing to say


def test_activation_checkpoint_wrappers_do_not_change_keys():
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    bare, wrapped = _mlp(), _mlp()
    wrapped[0] = checkpoint_wrapper(wrapped[0])
    wrapped[2] = torch.compile(wrapped[2])  # a compiled submodule: `_orig_mod.` in its names
    wi.init_model(bare, seed=2)
    plan = wi.init_model(wrapped, seed=2, example_inputs=(torch.randn(3, 16),))
    assert plan.rows[0].name == "0._checkpoint_wrapped_module.weight"
    assert plan.rows[0].key == "0.weight"
    for (name, a), b in zip(bare.named_parameters(), wrapped.parameters(), strict=True):
        assert torch.equal(a, b), name


def test_a_ddp_wrapper_is_transparent(tmp_path):
    import torch.distributed as dist

    bare = _mlp()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    try:
        wrapped = nn.parallel.DistributedDataParallel(_mlp())
        plan = wi.init_model(wrapped, seed=4, example_inputs=(torch.randn(3, 16),))
    finally:
        dist.destroy_process_group()
    wi.init_model(bare, seed=4)
    assert [row.name for row in plan] == [n for n, _ in bare.named_parameters()]  # no module.
    for (name, a), b in zip(bare.named_parameters(), wrapped.module.parameters(), strict=True):
        assert torch.equal(a, b), name
