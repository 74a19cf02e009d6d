"""init_model on torch's own recurrent and attention layers: LSTM, GRU, MultiheadAttention and
TransformerEncoderLayer get their roles, per-gate fans, orthogonal recurrences, forget-gate bias
and residual branch ends."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightinit as wi


def all_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_parameters(remove_duplicate=False)]


def rows_by_name(plan: wi.InitPlan) -> dict[str, wi.PlanRow]:
    return {row.name: row for row in plan}


def residual_names(plan: wi.InitPlan) -> set[str]:
    return {row.name for row in plan if row.residual}


def fans(row: wi.PlanRow) -> tuple[int, int]:
    assert row.fans is not None, row.name
    return row.fans.fan_in, row.fans.fan_out


def test_lstm_roles_orthogonal_recurrence_and_forget_bias():
    model = nn.LSTM(8, 16, num_layers=2, batch_first=True)
    plan = wi.init_model(model, example_inputs=(torch.randn(2, 5, 8),))
    rows = rows_by_name(plan)
    assert set(rows) == set(all_names(model))
    for layer in range(2):
        hh = rows[f"weight_hh_l{layer}"]
        assert hh.role == "rnn.weight_hh" and isinstance(hh.spec, wi.Orthogonal)
        assert fans(hh) == (16, 16)  # per gate
        ih = rows[f"weight_ih_l{layer}"]
        assert ih.role == "rnn.weight_ih" and fans(ih) == ((8, 16)[layer], 16)
        assert rows[f"bias_ih_l{layer}"].role == "rnn.bias_ih"
        assert rows[f"bias_hh_l{layer}"].role == "rnn.bias_hh"
        w = getattr(model, f"weight_hh_l{layer}").detach()
        for gate in w.split(16):  # auto: each gate's recurrent matrix orthogonal on its own
            assert torch.allclose(gate.T @ gate, torch.eye(16), atol=1e-5)
        bias_ih = getattr(model, f"bias_ih_l{layer}").detach()
        assert torch.equal(bias_ih[16:32], torch.ones(16))  # forget gate: the second quarter
        assert torch.count_nonzero(bias_ih[:16]) == 0 and torch.count_nonzero(bias_ih[32:]) == 0
        assert torch.count_nonzero(getattr(model, f"bias_hh_l{layer}")) == 0


def test_gru_biases_zero_and_recurrence_orthogonal():
    model = nn.GRU(8, 16)
    plan = wi.init_model(model, example_inputs=(torch.randn(5, 2, 8),))
    assert isinstance(plan["weight_hh_l0"].spec, wi.Orthogonal)
    assert fans(plan["weight_hh_l0"]) == (16, 16)
    assert torch.count_nonzero(model.bias_ih_l0) == 0
    assert torch.count_nonzero(model.bias_hh_l0) == 0


def test_lstm_language_model_synthesizes_its_input():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.lstm = nn.LSTM(16, 16, batch_first=True)
            self.head = nn.Linear(16, 50)

        def forward(self, ids):
            return self.head(self.lstm(self.embed(ids))[0])

    model = Net()
    plan = wi.init_model(model)
    assert plan.notes[0].startswith("Dataflow from one forward pass")
    assert plan["lstm.weight_ih_l0"].source == "Embedding embed"
    assert plan["head.weight"].source == "LSTM lstm"
    assert torch.isfinite(model(torch.randint(0, 50, (2, 7)))).all()


class Attention(nn.Module):
    def __init__(self, **options) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(16, 2, batch_first=True, **options)

    def forward(self, x):
        return self.mha(x, x, x)[0]


def test_multihead_attention_roles():
    model = Attention()
    plan = wi.init_model(model, example_inputs=(torch.randn(2, 5, 16),))
    in_proj = plan["mha.in_proj_weight"]
    assert in_proj.role == "qkv.weight" and fans(in_proj) == (16, 16)
    assert plan["mha.in_proj_bias"].role == "qkv.bias"
    out = plan["mha.out_proj.weight"]
    assert out.role == "linear.weight"
    assert out.activation == "linear" and out.source == "attention"
    assert out.note == ""
    assert [row.name for row in plan] == ["mha.in_proj_weight", "mha.in_proj_bias",
                                          "mha.out_proj.weight", "mha.out_proj.bias"]


def test_multihead_attention_bias_kv_roles():
    model = Attention(add_bias_kv=True)
    plan = wi.init_model(model, example_inputs=(torch.randn(2, 5, 16),))
    assert plan["mha.bias_k"].role == plan["mha.bias_v"].role == "attention.bias_kv"
    assert not plan["mha.bias_k"].kept


def test_bare_multihead_attention_out_proj_is_fed_by_attention():
    """The MHA is the model itself: out_proj is still used (functionally) in the forward."""
    model = nn.MultiheadAttention(16, 2, batch_first=True)
    x = torch.randn(2, 5, 16)
    plan = wi.init_model(model, example_inputs=(x, x, x), dry_run=True)
    out = plan["out_proj.weight"]
    assert out.activation == "linear" and out.source == "attention", out
    assert "not called" not in out.note


@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_encoder_layer_residual_ends(norm_first):
    model = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, norm_first=norm_first)
    plan = wi.init_model(model, example_inputs=(torch.randn(2, 5, 16),), dry_run=True)
    assert "2 residual branches found." in plan.notes
    assert plan["self_attn.in_proj_weight"].role == "qkv.weight"
    assert plan["linear2.weight"].activation == "relu"
    assert plan["linear2.weight"].source == "Linear linear1"
    assert plan["self_attn.out_proj.weight"].activation == "linear"
    # Both branches end in a weight layer (post-LN puts the norm after the add).
    assert residual_names(plan) == {"self_attn.out_proj.weight", "linear2.weight"}
    assert not plan["self_attn.in_proj_weight"].residual
