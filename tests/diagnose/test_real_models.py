"""diagnose on real architectures: Hugging Face transformers built from tiny configs (offline,
never from_pretrained). With their own init (N(0, 0.02), which trains) and after `auto` where
auto is known to be right, nothing at warning or above: no chain across ConvNeXt's LayerScale or
CLIP's two towers, no "vanishing" verdict that its own numbers contradict (Wav2Vec2). Damaged
the way real models were, each gives its finding: Gemma's (1 + w) norms with w = 1, GPT-2's
positions N(0, 1) over tokens N(0, 1/d), Mixtral's experts far too small, T5's queries not
scaled."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import weightinit as wi

tf = pytest.importorskip("transformers", reason="the [hf] extra is not installed")

PROPAGATION = {"forward_vanishing", "forward_exploding", "backward_vanishing",
               "backward_exploding"}
VOCAB, HIDDEN, INTER, LAYERS, HEADS = 128, 32, 64, 2, 2


def _ids(seq: int = 16) -> torch.Tensor:
    return torch.randint(1, VOCAB, (4, seq), generator=torch.Generator().manual_seed(1))


def _pixels() -> torch.Tensor:
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))


def _text(**options: Any) -> dict[str, Any]:
    return dict(hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                num_attention_heads=HEADS, **options)


def gpt2() -> tuple[nn.Module, dict[str, Any]]:
    config = tf.GPT2Config(n_layer=LAYERS, n_embd=HIDDEN, n_head=HEADS, vocab_size=VOCAB,
                           n_positions=64, bos_token_id=0, eos_token_id=0)
    return tf.GPT2LMHeadModel(config), {"input_ids": _ids()}


def llama() -> tuple[nn.Module, dict[str, Any]]:
    config = tf.LlamaConfig(**_text(num_key_value_heads=1), vocab_size=VOCAB,
                            max_position_embeddings=64)
    return tf.LlamaForCausalLM(config), {"input_ids": _ids()}


def bert() -> tuple[nn.Module, dict[str, Any]]:
    config = tf.BertConfig(**_text(), vocab_size=VOCAB, max_position_embeddings=64)
    return tf.BertModel(config), {"input_ids": _ids()}


def vit() -> tuple[nn.Module, dict[str, Any]]:
    config = tf.ViTConfig(**_text(), image_size=32, patch_size=8)
    return tf.ViTModel(config), {"pixel_values": _pixels()}


def resnet() -> tuple[nn.Module, dict[str, Any]]:
    config = tf.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[2, 2])
    return tf.ResNetModel(config), {"pixel_values": _pixels()}


def convnext() -> tuple[nn.Module, dict[str, Any]]:
    # layer_scale_init_value=1e-6: each block's branch times a learned gamma of 1e-6.
    config = tf.ConvNextConfig(num_stages=2, hidden_sizes=[16, 32], depths=[2, 2])
    return tf.ConvNextModel(config), {"pixel_values": _pixels()}


def clip() -> tuple[nn.Module, dict[str, Any]]:
    config = tf.CLIPConfig(
        text_config=_text(vocab_size=VOCAB, max_position_embeddings=32),
        vision_config=_text(image_size=32, patch_size=8), projection_dim=16)
    return tf.CLIPModel(config), {"input_ids": _ids(), "pixel_values": _pixels()}


def wav2vec2() -> tuple[nn.Module, dict[str, Any]]:
    config = tf.Wav2Vec2Config(
        **_text(), conv_dim=(16, 16, 16), conv_stride=(5, 2, 2), conv_kernel=(10, 3, 3),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    audio = torch.randn(4, 4000, generator=torch.Generator().manual_seed(3))
    return tf.Wav2Vec2Model(config), {"input_values": audio}


def t5(d_kv: int = 16) -> tuple[nn.Module, dict[str, Any]]:
    config = tf.T5Config(vocab_size=VOCAB, d_model=HIDDEN, d_kv=d_kv, d_ff=INTER,
                         num_layers=LAYERS, num_heads=HEADS, relative_attention_num_buckets=8)
    return tf.T5EncoderModel(config), {"input_ids": _ids()}


MODELS: dict[str, Callable[[], tuple[nn.Module, dict[str, Any]]]] = {
    "gpt2": gpt2, "llama": llama, "bert": bert, "vit": vit, "resnet": resnet,
    "convnext": convnext, "clip": clip, "wav2vec2": wav2vec2, "t5": t5}
AUTO_IS_RIGHT = ("gpt2", "bert", "vit", "resnet")  # others: auto is being reworked for them


def build(factory: Callable[[], tuple[nn.Module, dict[str, Any]]], *, auto: bool = False
          ) -> tuple[nn.Module, dict[str, Any]]:
    torch.manual_seed(0)
    model, inputs = factory()
    model.eval()
    if auto:
        wi.init_model(model, example_inputs=inputs)
    return model, inputs


def loud(diagnosis: wi.Diagnosis) -> list[tuple[str, str]]:
    return [(f.kind, f.message) for f in diagnosis.findings if f.severity != "info"]


def assert_consistent(diagnosis: wi.Diagnosis) -> None:
    for f in diagnosis.findings:
        if f.kind in PROPAGATION:
            n = f.numbers
            assert (n["last"] < n["first"]) == f.kind.endswith("vanishing"), f.message


@pytest.mark.parametrize("name", list(MODELS))
def test_own_init_gives_no_warning(name):
    model, inputs = build(MODELS[name])
    diagnosis = wi.diagnose(model, inputs)
    assert not loud(diagnosis), loud(diagnosis)
    assert_consistent(diagnosis)


@pytest.mark.parametrize("name", AUTO_IS_RIGHT)
def test_auto_gives_no_warning_where_it_is_right(name):
    model, inputs = build(MODELS[name], auto=True)
    assert not loud(diagnosis := wi.diagnose(model, inputs)), loud(diagnosis)


@pytest.mark.parametrize("name", ["convnext", "clip", "wav2vec2"])
def test_no_depth_trend_across_layer_scale_towers_or_resolutions_after_auto(name):
    # ConvNeXt: an error from the 1e-6 LayerScale read as exploding gradients. CLIP: one
    # backward chain from the text projection into the vision tower. Wav2Vec2: "vanish"
    # over RMS 0.978 -> 1.2.
    model, inputs = build(MODELS[name], auto=True)
    diagnosis = wi.diagnose(model, inputs)
    assert not diagnosis.kinds("warning") & PROPAGATION, loud(diagnosis)
    assert_consistent(diagnosis)


def _finding(diagnosis: wi.Diagnosis, kind: str) -> wi.Finding:
    found = [f for f in diagnosis.findings if f.kind == kind]
    assert found, loud(diagnosis)
    assert "If ignored" in found[0].message, found[0].message
    return found[0]


def test_gemma_norms_with_scale_one_are_found():
    config = tf.GemmaConfig(**_text(num_key_value_heads=1), vocab_size=VOCAB, head_dim=16,
                            max_position_embeddings=64)
    model, inputs = build(lambda: (tf.GemmaModel(config), {"input_ids": _ids()}))
    assert "norm_scale" not in wi.diagnose(model, inputs).kinds()
    with torch.no_grad():
        for module in model.modules():
            if type(module).__name__ == "GemmaRMSNorm":
                module.weight.fill_(1.0)  # x_hat * (1 + 1)
    scale = _finding(wi.diagnose(model, inputs), "norm_scale")
    assert scale.numbers["worst_scale"] == pytest.approx(2.0, rel=1e-3)
    assert scale.numbers["norms"] == 2 * LAYERS + 1


def test_gpt2_positions_swamping_tokens_are_found():
    model, inputs = build(gpt2)
    with torch.no_grad():
        model.transformer.wte.weight.normal_(0.0, HIDDEN ** -0.5)
        model.transformer.wpe.weight.normal_(0.0, 1.0)
    lopsided = _finding(wi.diagnose(model, inputs), "embedding_imbalance")
    assert lopsided.layer == "transformer.wpe" and lopsided.numbers["ratio"] > 4
    assert "positions swamp the tokens" in lopsided.message


def test_mixtral_experts_far_below_attention_are_found():
    config = tf.MixtralConfig(**_text(num_key_value_heads=1), vocab_size=VOCAB,
                              max_position_embeddings=64, num_local_experts=4,
                              num_experts_per_tok=2)
    model, inputs = build(lambda: (tf.MixtralModel(config), {"input_ids": _ids()}))
    assert "branch_imbalance" not in wi.diagnose(model, inputs).kinds()
    with torch.no_grad():
        for module in model.modules():
            if type(module).__name__ == "MixtralExperts":
                for p in module.parameters(recurse=False):
                    p.mul_(0.03)
    gap = _finding(wi.diagnose(model, inputs), "branch_imbalance")
    assert gap.layer.endswith("mlp.experts") and gap.numbers["ratio"] > 100


def test_t5_queries_without_their_scale_are_found():
    model, inputs = build(lambda: t5(d_kv=64))
    assert "attention_one_hot" not in wi.diagnose(model, inputs).kinds()
    with torch.no_grad():  # T5 does not scale its scores; its init scales q by 1/sqrt(d_kv)
        for name, module in model.named_modules():
            if name.endswith("SelfAttention.q"):
                module.weight.mul_(64 ** 0.5)
    peaked = _finding(wi.diagnose(model, inputs), "attention_one_hot")
    assert peaked.numbers["mean_max_probability"] > 0.8
