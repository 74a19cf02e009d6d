"""diagnose on transformer-shaped nets (tests/diagnose/structure_nets.py, initialized by hand):
depth trends are read only along chains of layers where they mean something (not across a
LayerScale, a norm or an attention, not from one tower into another), every verdict agrees with
the numbers in its message, and four ways real models start wrong are each found, and only
where they are: a norm that does not start at the identity, attention already one-hot, position
embeddings swamping the tokens, and a residual branch orders of magnitude below its sibling."""

from __future__ import annotations

import math

import diagnose_structure_nets as sn
import pytest
import torch
from torch import nn

import weightinit as wi
from weightinit.diagnose._findings import find
from weightinit.diagnose._types import LayerStats

PROPAGATION = {"forward_vanishing", "forward_exploding", "backward_vanishing",
               "backward_exploding"}
IDS = sn.token_ids()


def warnings(diagnosis: wi.Diagnosis) -> set[str]:
    return diagnosis.kinds("warning")


def assert_consistent(findings) -> None:
    """A propagation verdict agrees with the two RMS values its message shows."""
    for f in findings:
        if f.kind in PROPAGATION:
            n = f.numbers
            assert n["ratio"] == pytest.approx(n["last"] / n["first"])
            assert (n["last"] < n["first"]) == f.kind.endswith("vanishing"), f.message
            assert f"{n['first']:.3g} -> {n['last']:.3g}" in f.message


def finding(diagnosis: wi.Diagnosis, kind: str) -> wi.Finding:
    found = next(f for f in diagnosis.findings if f.kind == kind)
    assert "If ignored" in found.message, found.message
    return found


@pytest.mark.parametrize("options", [
    {}, {"explicit": True}, {"norm": sn.OnePlusRMS}, {"moe": True}, {"layers": 6},
    # ConvNeXt and CaiT multiply each branch by a learned per-channel gamma = 1e-6: the
    # gradient ratio across it is that factor, not a trend with depth.
    {"layer_scale": 1e-6},
], ids=["sdpa", "softmax", "one-plus-rms", "moe", "6 blocks", "layer-scale"])
def test_well_initialized_transformer_shapes_give_no_warning(options):
    diagnosis = wi.diagnose(sn.TinyLM(**options), IDS)
    assert diagnosis.healthy, [(f.kind, f.message) for f in diagnosis.findings]
    assert_consistent(diagnosis.findings)


def test_independent_towers_are_not_one_chain():
    # CLIP's towers: the right one sees inputs 1000x smaller. Read in execution order, the
    # layers of both would form one chain that "vanishes" by 1000x, forward and backward.
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(2))
    diagnosis = wi.diagnose(sn.Towers(), (x, x * 1e-3))
    assert diagnosis.healthy, [(f.kind, f.message) for f in diagnosis.findings]
    # A trend inside one tower is still found, and named there.
    towers = sn.Towers()
    with torch.no_grad():
        for layer in towers.right:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(0.1)
    diagnosis = wi.diagnose(towers, (x, x))
    vanishing = finding(diagnosis, "forward_vanishing")
    assert vanishing.layer == "right.0" and vanishing.numbers["layers"] == 4
    assert_consistent(diagnosis.findings)


def _layer(index: int, grad: float, positions: int) -> LayerStats:
    return LayerStats(
        name=f"conv{index}", layer="Conv1d", index=index, activation="gelu", source="input",
        out_mean=0.0, out_std=1.0, out_rms=1.0, out_nonfinite=0, in_rms=1.0,
        dead_fraction=None, saturated_fraction=None, grad_out_rms=grad, grad_weight_rms=grad,
        weight_std=0.1, recommended_std=0.1, bias_mean=0.0, identical_units=0,
        param_nonfinite=0, param_max_abs=0.5, param_denormals=0, positions=positions)


def test_a_verdict_agrees_with_its_numbers():
    # Wav2Vec2's strided convolutions: the gradient RMS per element rises where the
    # resolution changes and falls within each resolution. Skipping the changes but quoting
    # the end points once gave "vanish ... 0.978 -> 1.2"; each chain is now cut there.
    grads = [(1.2, 64), (3.0, 64), (0.03, 16), (0.09, 16), (0.3, 16), (1.0, 16)]
    layers = [_layer(i, g, p) for i, (g, p) in enumerate(grads)]
    found = find(layers, {x.name for x in layers})
    assert_consistent(found)
    backward = next(f for f in found if f.kind == "backward_vanishing")
    assert backward.numbers["first"] == 1.0 and backward.numbers["last"] == 0.03
    assert backward.layer == "conv2" and backward.numbers["layers"] == 4


def test_a_norm_that_does_not_start_at_the_identity():
    model = sn.TinyLM(norm=sn.OnePlusRMS)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, sn.OnePlusRMS):
                module.weight.fill_(1.0)  # Gemma's norm "initialized to 1": x_hat * 2
    diagnosis = wi.diagnose(model, IDS)
    scale = finding(diagnosis, "norm_scale")
    assert scale.severity == "warning"
    assert scale.numbers["worst_scale"] == pytest.approx(2.0, rel=1e-3)
    assert scale.numbers["norms"] == 5  # two per block and the final one
    assert "x_hat * (1 + w)" in scale.fix


class _PostNorm(nn.Module):
    """x + LN(fc2(gelu(fc1(LN0(x))))): the branch-ending norm is scaled down on purpose."""

    def __init__(self, first_scale: float) -> None:
        super().__init__()
        self.first, self.fc1, self.fc2 = nn.LayerNorm(64), nn.Linear(64, 128), nn.Linear(128, 64)
        self.post, self.out = nn.LayerNorm(64), nn.Linear(64, 8)
        with torch.no_grad():
            self.first.weight.fill_(first_scale)
            self.post.weight.fill_(0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.post(self.fc2(torch.nn.functional.gelu(self.fc1(self.first(x)))))
        return self.out(x)


def test_a_norm_ending_a_branch_may_be_scaled_down_but_not_one_before_a_layer():
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(3))
    assert "norm_scale" not in wi.diagnose(_PostNorm(1.0), x).kinds()
    scale = finding(wi.diagnose(_PostNorm(0.25), x), "norm_scale")
    assert scale.layer == "first" and scale.numbers["norms"] == 1
    assert scale.numbers["worst_scale"] == pytest.approx(0.25, rel=1e-3)


@pytest.mark.parametrize("explicit", [True, False], ids=["softmax", "sdpa"])
def test_attention_already_one_hot(explicit):
    # Queries sqrt(d) too large (T5 scales its queries at init instead of its scores).
    model = sn.TinyLM(explicit=explicit)
    with torch.no_grad():
        for block in model.blocks:
            block.attn.q.weight.mul_(math.sqrt(sn.WIDTH))
    diagnosis = wi.diagnose(model, IDS)
    peaked = finding(diagnosis, "attention_one_hot")
    assert peaked.severity == "warning" and peaked.layer.endswith(".attn")
    assert peaked.numbers["mean_max_probability"] > 0.8
    assert peaked.numbers["keys"] == sn.SEQ and peaked.numbers["calls"] == 2
    assert warnings(diagnosis) == {"attention_one_hot"}


def test_positions_swamping_tokens():
    model = sn.TinyLM()
    with torch.no_grad():  # GPT-2 with wpe N(0, 1) and a tied wte N(0, 1/d)
        model.wte.weight.normal_(0.0, sn.WIDTH ** -0.5, generator=torch.Generator())
    diagnosis = wi.diagnose(model, IDS)
    lopsided = finding(diagnosis, "embedding_imbalance")
    assert lopsided.layer == "wpe" and lopsided.severity == "warning"
    assert lopsided.numbers["ratio"] == pytest.approx(math.sqrt(sn.WIDTH), rel=0.1)
    assert "positions swamp the tokens" in lopsided.message
    assert "get_submodule('wpe')" in lopsided.code
    assert warnings(diagnosis) == {"embedding_imbalance"}


def test_a_branch_orders_of_magnitude_below_its_sibling():
    model = sn.TinyLM(moe=True)
    with torch.no_grad():  # Mixtral's experts far too small: the MoE branch adds ~nothing
        for block in model.blocks:
            block.mlp.w1.mul_(1e-2)
            block.mlp.w2.mul_(1e-2)
    diagnosis = wi.diagnose(model, IDS)
    gap = finding(diagnosis, "branch_imbalance")
    assert gap.layer in ("blocks.0.mlp", "blocks.1.mlp") and gap.numbers["ratio"] > 1e3
    assert gap.numbers["pairs"] == 3  # attn-moe, moe-attn, attn-moe along one stream
    assert warnings(diagnosis) == {"branch_imbalance"}


def test_branches_that_start_at_zero_are_a_choice_not_an_imbalance():
    model = sn.TinyLM()
    with torch.no_grad():  # ReZero / Fixup: every branch's last layer is 0
        for block in model.blocks:
            block.attn.o.weight.zero_()
            block.mlp.fc2.weight.zero_()
            block.mlp.fc2.bias.zero_()
    diagnosis = wi.diagnose(model, IDS)
    assert diagnosis.healthy, [(f.kind, f.message) for f in diagnosis.findings]
    assert "zero_branches" in diagnosis.kinds("info")


def test_a_pre_norm_stream_growing_linearly_is_not_residual_growth():
    # Llama's own init: embeddings N(0, 0.02) under branches of fixed size. The stream's
    # variance grows linearly (x10 in RMS over 24 adds here, x1.6 over the later half): how
    # deep pre-norm models start. Unnormalized branches double it per block (the _Residual
    # test in test_diagnose.py): that compounds, and is found.
    model = sn.TinyLM(layers=12)
    with torch.no_grad():
        model.wte.weight.mul_(0.02)
        model.wpe.weight.mul_(0.02)
    diagnosis = wi.diagnose(model, IDS)
    assert diagnosis.healthy, [(f.kind, f.message) for f in diagnosis.findings]


class _Scaled(nn.Module):
    """Four layers with a constant x 1e-6 after the second (an unscaled logit, a units change):
    one factor, not a trend, and the chains on either side of it are too short for one."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.ModuleList(sn.tower(depth=1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc[1](torch.relu(self.fc[0](x))) * 1e-6
        return self.fc[3](torch.relu(self.fc[2](x)))


def test_a_constant_scale_between_layers_is_not_a_depth_trend():
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(4))
    diagnosis = wi.diagnose(_Scaled(), x)
    assert not diagnosis.kinds("warning") & PROPAGATION, diagnosis.findings


def test_attention_inside_multihead_attention_is_measured():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True,
                                       norm_first=True)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    batch = torch.randn(2, 16, 32)
    wi.init_model(model, example_inputs=(batch,))
    assert not [f for f in wi.diagnose(model, batch).findings if f.kind == "attention_one_hot"]
    with torch.no_grad():
        for block in model.layers:  # the q rows of the packed projection, x 32
            block.self_attn.in_proj_weight[:32] *= 32
    found = [f for f in wi.diagnose(model, batch).findings if f.kind == "attention_one_hot"]
    assert found and found[0].severity == "warning"


def test_a_long_sequence_is_measured_on_a_subset_of_query_rows():
    from weightinit.diagnose._watch import _ATTENTION_ELEMENTS, _recompute

    q = torch.randn(1, 8, 2048, 16)
    probs = _recompute((q, q, q), {"is_causal": True})
    assert probs is not None and probs.numel() <= 2 * _ATTENTION_ELEMENTS
    assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[:-1]))
    # row 0 of the subset is query 0: it sees only key 0
    assert float(probs[0, 0, 0, 0]) == 1.0


def test_complex_models_and_meta_batches_are_refused():
    class Complex(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return torch.complex(self.fc(x), self.fc(x))

    with pytest.raises(wi.InitError, match="output is complex"):
        wi.diagnose(Complex(), torch.randn(8, 4))
    with pytest.raises(wi.InitError, match="'weight' is complex"):
        wi.diagnose(nn.Linear(4, 4, dtype=torch.complex64), torch.randn(8, 4))
    with pytest.raises(wi.InitError, match="meta tensor"):
        wi.diagnose(nn.Linear(4, 4), torch.empty(8, 4, device="meta"))
