"""The zoo: real architectures at tiny sizes, each a factory returning (model, example_inputs).

Hugging Face models are built only from their config classes (never from_pretrained, no network:
HF_HUB_OFFLINE=1 is set before transformers is imported); plain-torch cases cover layer orders,
concatenated branches, lazy modules, parametrizations and torch.compile. `example_inputs` is a
dict of keyword arguments, drawn from a seeded torch.Generator; the caller seeds torch (the
model's own init) before calling a factory.

`ZOO[name]` is a `Case`: the factory, how to read the last hidden state from the model's output
(`hidden`, see `measure.py`), whether `output_hidden_states=True` is passed, and, for a model
init_model must refuse, the InitError text expected.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from torch import nn

Inputs = dict[str, Any]
Built = tuple[nn.Module, Inputs]

VOCAB, HIDDEN, INTER, LAYERS, HEADS = 128, 32, 64, 2, 2
BATCH, SEQ, IMAGE = 2, 16, 32


@dataclasses.dataclass(frozen=True)
class Case:
    build: Callable[[], Built]
    # How the last hidden state is read from the output (measure.last_hidden):
    #   "hidden_states": output.hidden_states[-1] (output_hidden_states=True is passed)
    #   "last_hidden_state": output.last_hidden_state
    #   "decoder_hidden_states": output.decoder_hidden_states[-1] (encoder-decoder)
    #   "text_embeds": CLIP's projected text embeddings (and image_embeds, both measured)
    #   "tensor": the output is a tensor (plain torch)
    hidden: str = "hidden_states"
    hidden_states_kwarg: bool = True
    raises: str | None = None  # init_model must raise an InitError matching this (regex)


def _gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ids(vocab: int = VOCAB, seq: int = SEQ, seed: int = 1) -> torch.Tensor:
    return torch.randint(1, vocab, (BATCH, seq), generator=_gen(seed))


def pixels(size: int = IMAGE, channels: int = 3, seed: int = 2) -> torch.Tensor:
    return torch.randn(BATCH, channels, size, size, generator=_gen(seed))


def _tf() -> Any:
    import transformers

    return transformers


def _decoder(config_cls: str, model_cls: str, **options: Any) -> Built:
    """A decoder-only LM with the common Llama-style config names."""
    tf = _tf()
    base = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER,
                num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=1,
                max_position_embeddings=64)
    base.update(options)
    config = getattr(tf, config_cls)(**base)
    return getattr(tf, model_cls)(config), {"input_ids": ids()}


# --- decoder-only language models ---------------------------------------------------------------
def gpt2() -> Built:
    tf = _tf()
    config = tf.GPT2Config(n_layer=LAYERS, n_embd=HIDDEN, n_head=HEADS, vocab_size=VOCAB,
                           n_positions=64, bos_token_id=0, eos_token_id=0)
    return tf.GPT2LMHeadModel(config), {"input_ids": ids()}


def llama() -> Built:
    return _decoder("LlamaConfig", "LlamaForCausalLM")


def mistral() -> Built:
    return _decoder("MistralConfig", "MistralForCausalLM")


def qwen2() -> Built:
    return _decoder("Qwen2Config", "Qwen2ForCausalLM")


def phi3() -> Built:
    return _decoder("Phi3Config", "Phi3ForCausalLM", pad_token_id=0, bos_token_id=1,
                    eos_token_id=2)


def gemma() -> Built:
    return _decoder("GemmaConfig", "GemmaForCausalLM", head_dim=16)


def gemma2() -> Built:
    # query_pre_attn_scalar = head_dim as in Gemma 2 9B (both 256 there: the defaults)
    return _decoder("Gemma2Config", "Gemma2ForCausalLM", head_dim=16, query_pre_attn_scalar=16,
                    sliding_window=8)


def gemma3() -> Built:
    return _decoder("Gemma3TextConfig", "Gemma3ForCausalLM", head_dim=16,
                    query_pre_attn_scalar=16, sliding_window=8)


def mixtral() -> Built:
    return _decoder("MixtralConfig", "MixtralForCausalLM", num_local_experts=4,
                    num_experts_per_tok=2)


def qwen3_moe() -> Built:
    return _decoder("Qwen3MoeConfig", "Qwen3MoeForCausalLM", head_dim=16, num_experts=4,
                    num_experts_per_tok=2, moe_intermediate_size=32, decoder_sparse_step=1)


def opt() -> Built:
    tf = _tf()
    config = tf.OPTConfig(vocab_size=VOCAB, hidden_size=HIDDEN, ffn_dim=INTER,
                          num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                          word_embed_proj_dim=HIDDEN, max_position_embeddings=64, pad_token_id=0)
    return tf.OPTForCausalLM(config), {"input_ids": ids()}


def gpt_neox() -> Built:
    tf = _tf()
    config = tf.GPTNeoXConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER,
                              num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                              max_position_embeddings=64, use_parallel_residual=True)
    return tf.GPTNeoXForCausalLM(config), {"input_ids": ids()}


def falcon() -> Built:
    tf = _tf()
    config = tf.FalconConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                             num_attention_heads=HEADS, parallel_attn=True,
                             new_decoder_architecture=False, multi_query=True, alibi=False,
                             bias=False, max_position_embeddings=64)
    return tf.FalconForCausalLM(config), {"input_ids": ids()}


def mamba() -> Built:
    tf = _tf()
    config = tf.MambaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, state_size=8,
                            num_hidden_layers=LAYERS, expand=2, conv_kernel=4,
                            use_mambapy=False)
    return tf.MambaForCausalLM(config), {"input_ids": ids()}


# --- encoders ----------------------------------------------------------------------------------
def _encoder_options() -> dict[str, Any]:
    return dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER,
                num_hidden_layers=LAYERS, num_attention_heads=HEADS, max_position_embeddings=64)


def bert() -> Built:
    tf = _tf()
    return tf.BertForMaskedLM(tf.BertConfig(**_encoder_options())), {"input_ids": ids()}


def roberta() -> Built:
    tf = _tf()
    config = tf.RobertaConfig(**_encoder_options(), pad_token_id=1)
    return tf.RobertaForMaskedLM(config), {"input_ids": ids()}


def distilbert() -> Built:
    tf = _tf()
    config = tf.DistilBertConfig(vocab_size=VOCAB, dim=HIDDEN, hidden_dim=INTER, n_layers=LAYERS,
                                 n_heads=HEADS, max_position_embeddings=64)
    return tf.DistilBertForMaskedLM(config), {"input_ids": ids()}


def mobilebert() -> Built:
    tf = _tf()
    config = tf.MobileBertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, embedding_size=16,
                                 intermediate_size=INTER, num_hidden_layers=LAYERS,
                                 num_attention_heads=HEADS, intra_bottleneck_size=16,
                                 true_hidden_size=16, num_feedforward_networks=2,
                                 max_position_embeddings=64)
    return tf.MobileBertModel(config), {"input_ids": ids()}


# --- encoder-decoders --------------------------------------------------------------------------
def t5() -> Built:
    tf = _tf()
    config = tf.T5Config(vocab_size=VOCAB, d_model=HIDDEN, d_kv=16, d_ff=INTER,
                         num_layers=LAYERS, num_decoder_layers=LAYERS, num_heads=HEADS,
                         relative_attention_num_buckets=8, decoder_start_token_id=0)
    return tf.T5ForConditionalGeneration(config), {"input_ids": ids(),
                                                   "decoder_input_ids": ids(seq=8, seed=3)}


def bart() -> Built:
    tf = _tf()
    config = tf.BartConfig(vocab_size=VOCAB, d_model=HIDDEN, encoder_layers=LAYERS,
                           decoder_layers=LAYERS, encoder_attention_heads=HEADS,
                           decoder_attention_heads=HEADS, encoder_ffn_dim=INTER,
                           decoder_ffn_dim=INTER, max_position_embeddings=64)
    return tf.BartForConditionalGeneration(config), {"input_ids": ids(),
                                                     "decoder_input_ids": ids(seq=8, seed=3)}


def whisper() -> Built:
    tf = _tf()
    config = tf.WhisperConfig(vocab_size=VOCAB, num_mel_bins=16, d_model=HIDDEN,
                              encoder_layers=LAYERS, decoder_layers=LAYERS,
                              encoder_attention_heads=HEADS, decoder_attention_heads=HEADS,
                              encoder_ffn_dim=INTER, decoder_ffn_dim=INTER,
                              max_source_positions=16, max_target_positions=32,
                              decoder_start_token_id=1, pad_token_id=0, bos_token_id=1,
                              eos_token_id=2, suppress_tokens=[], begin_suppress_tokens=[])
    features = torch.randn(BATCH, 16, 32, generator=_gen(4))  # 2 * max_source_positions frames
    return tf.WhisperForConditionalGeneration(config), {
        "input_features": features, "decoder_input_ids": ids(seq=8, seed=3)}


# --- vision ------------------------------------------------------------------------------------
def vit() -> Built:
    tf = _tf()
    config = tf.ViTConfig(hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                          num_attention_heads=HEADS, image_size=IMAGE, patch_size=8)
    return tf.ViTModel(config), {"pixel_values": pixels()}


def deit() -> Built:
    tf = _tf()
    config = tf.DeiTConfig(hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                           num_attention_heads=HEADS, image_size=IMAGE, patch_size=8)
    return tf.DeiTModel(config), {"pixel_values": pixels()}


def resnet() -> Built:
    tf = _tf()
    config = tf.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1],
                             layer_type="basic", num_labels=10)
    return tf.ResNetForImageClassification(config), {"pixel_values": pixels()}


def convnext() -> Built:
    tf = _tf()
    config = tf.ConvNextConfig(hidden_sizes=[16, 32], depths=[1, 1], num_stages=2,
                               image_size=IMAGE, num_labels=10)
    return tf.ConvNextForImageClassification(config), {"pixel_values": pixels()}


def swin() -> Built:
    tf = _tf()
    config = tf.SwinConfig(image_size=IMAGE, patch_size=4, embed_dim=16, depths=[1, 1],
                           num_heads=[2, 2], window_size=4)
    return tf.SwinModel(config), {"pixel_values": pixels()}


# --- multimodal and audio ----------------------------------------------------------------------
def clip() -> Built:
    tf = _tf()
    text = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER,
                num_hidden_layers=LAYERS, num_attention_heads=HEADS, max_position_embeddings=32,
                bos_token_id=0, eos_token_id=2)
    vision = dict(hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                  num_attention_heads=HEADS, image_size=IMAGE, patch_size=8)
    config = tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=HIDDEN)
    return tf.CLIPModel(config), {"input_ids": ids(), "pixel_values": pixels()}


def wav2vec2() -> Built:
    tf = _tf()
    config = tf.Wav2Vec2Config(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER,
                               num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                               conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3),
                               num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                               feat_extract_norm="group", do_stable_layer_norm=False,
                               mask_time_prob=0.0)
    audio = torch.randn(BATCH, 800, generator=_gen(5))
    return tf.Wav2Vec2Model(config), {"input_values": audio}


# --- plain torch -------------------------------------------------------------------------------
class ReversedMLP(nn.Module):
    """fc2 is registered before fc1: registration order is not execution order."""

    def __init__(self) -> None:
        super().__init__()
        self.fc2 = nn.Linear(64, 10)
        self.fc1 = nn.Linear(32, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class ConcatNet(nn.Module):
    """U-Net-like: the head reads cat([relu(a(x)), b(x)]): half ReLU, half linear."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(32, 64)
        self.a = nn.Linear(64, 64)
        self.b = nn.Linear(64, 64)
        self.head = nn.Linear(128, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        return self.head(torch.cat([torch.relu(self.a(h)), self.b(h)], dim=-1))


def _vector(features: int = 32, batch: int = 64, seed: int = 6) -> torch.Tensor:
    return torch.randn(batch, features, generator=_gen(seed))


def mlp_reversed() -> Built:
    return ReversedMLP(), {"x": _vector()}


def unet_concat() -> Built:
    return ConcatNet(), {"x": _vector()}


class Wrap(nn.Module):
    """A Sequential with a keyword input (the zoo passes keyword arguments)."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def lazy_linear() -> Built:
    return Wrap(nn.LazyLinear(64), nn.ReLU(), nn.Linear(64, 10)), {"x": _vector()}


def weight_norm() -> Built:
    from torch.nn.utils.parametrizations import weight_norm as wn

    return Wrap(wn(nn.Linear(32, 64)), nn.ReLU(), wn(nn.Linear(64, 64)), nn.ReLU(),
                nn.Linear(64, 10)), {"x": _vector()}


def spectral_norm() -> Built:
    from torch.nn.utils.parametrizations import spectral_norm as sn

    return Wrap(sn(nn.Linear(32, 64)), nn.ReLU(), sn(nn.Linear(64, 64)), nn.ReLU(),
                nn.Linear(64, 10)), {"x": _vector()}


def compiled_mlp() -> Built:
    """torch.compile returns an OptimizedModule at once (compiling happens on its first call,
    which needs a C++ compiler on the CPU): only init_model may call it."""
    net = Wrap(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    return torch.compile(net), {"x": _vector()}


def tanh_mlp() -> Built:
    return Wrap(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64),
                nn.Tanh(), nn.Linear(64, 10)), {"x": _vector()}


ZOO: dict[str, Case] = {
    # decoders
    "gpt2": Case(gpt2), "llama": Case(llama), "mistral": Case(mistral), "qwen2": Case(qwen2),
    "phi3": Case(phi3), "gemma": Case(gemma), "gemma2": Case(gemma2), "gemma3": Case(gemma3),
    "mixtral": Case(mixtral), "qwen3_moe": Case(qwen3_moe), "opt": Case(opt),
    "gpt_neox": Case(gpt_neox), "falcon": Case(falcon), "mamba": Case(mamba),
    # encoders
    "bert": Case(bert), "roberta": Case(roberta), "distilbert": Case(distilbert),
    "mobilebert": Case(mobilebert),
    # encoder-decoders
    "t5": Case(t5, hidden="decoder_hidden_states"),
    "bart": Case(bart, hidden="decoder_hidden_states"),
    "whisper": Case(whisper, hidden="decoder_hidden_states"),
    # vision
    "vit": Case(vit), "deit": Case(deit), "resnet": Case(resnet), "convnext": Case(convnext),
    "swin": Case(swin),
    # multimodal, audio
    "clip": Case(clip, hidden="text_embeds", hidden_states_kwarg=False),
    "wav2vec2": Case(wav2vec2),
    # plain torch
    "mlp_reversed": Case(mlp_reversed, hidden="tensor", hidden_states_kwarg=False),
    "unet_concat": Case(unet_concat, hidden="tensor", hidden_states_kwarg=False),
    "lazy_linear": Case(lazy_linear, hidden="tensor", hidden_states_kwarg=False,
                        # names the uninitialized parameter and says to run one forward first
                        raises=r"(?is)(net\.0\.weight.*forward|forward.*net\.0\.weight)"),
    "weight_norm": Case(weight_norm, hidden="tensor", hidden_states_kwarg=False),
    "spectral_norm": Case(spectral_norm, hidden="tensor", hidden_states_kwarg=False),
    "compiled_mlp": Case(compiled_mlp, hidden="tensor", hidden_states_kwarg=False),
    "tanh_mlp": Case(tanh_mlp, hidden="tensor", hidden_states_kwarg=False),
}
