"""`wi.build`: a model built on the meta device and materialized once gives the bits of building
it for real and calling init_model, with the same buffers; bad factories are refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightinit as wi

transformers = pytest.importorskip(
    "transformers", reason="the [hf] extra (pip install 'weightinit[hf]') is not installed")


def llama_config():
    return transformers.LlamaConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128,
                                    num_attention_heads=4, num_key_value_heads=2,
                                    vocab_size=256, max_position_embeddings=64)


def test_build_equals_construction_then_init_model():
    built = wi.build(transformers.LlamaForCausalLM, llama_config(), seed=1)
    reference = transformers.LlamaForCausalLM(llama_config())
    wi.init_model(reference, seed=1)
    assert built.state_dict().keys() == reference.state_dict().keys()
    for (name, a), b in zip(built.state_dict().items(), reference.state_dict().values(),
                            strict=True):
        assert not a.is_meta and torch.equal(a, b), name  # parameters and buffers (inv_freq)


def test_build_takes_keyword_arguments_and_a_policy():
    model = wi.build(nn.Linear, 8, 4, bias=False, policy="torch", seed=2)
    assert model.bias is None and model.weight.device.type == "cpu"
    assert float(model.weight.abs().max()) <= 1 / 8 ** 0.5


def test_bad_factories_are_refused():
    with pytest.raises(wi.InitError, match="`factory` must be"):
        wi.build(3)
    with pytest.raises(wi.InitError, match=r"returned int, not an nn\.Module"):
        wi.build(lambda: 3)

    def broken():
        raise RuntimeError("out of ideas")

    with pytest.raises(wi.InitError, match="Building broken on the meta device failed: "
                                           "RuntimeError: out of ideas"):
        wi.build(broken)


def test_an_instance_is_not_a_factory():
    with pytest.raises(wi.InitError, match="already built"):
        wi.build(nn.Linear(4, 4))
