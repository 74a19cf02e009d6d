"""A GPT-2-like decoder in plain torch, for the scale tests and the materialize benchmark.

Token and position embeddings, pre-norm blocks (LayerNorm, fused qkv Linear, causal
`scaled_dot_product_attention`, output projection, residual add; LayerNorm, Linear(4d), GELU,
Linear(d), residual add), a final LayerNorm and an output Linear tied to the token embedding.
No buffers: the causal mask comes from `is_causal=True`, so the model is the same on every
device.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    vocab: int = 50257
    context: int = 1024
    width: int = 768
    layers: int = 12
    heads: int = 12

    @property
    def n_params(self) -> int:
        """Parameters, the tied output weight counted once."""
        d = self.width
        block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (
            4 * d * d + d)
        return self.vocab * d + self.context * d + self.layers * block + 2 * d


GPT_1_3B = GPTConfig(vocab=50257, context=1024, width=2048, layers=24, heads=16)
"""GPT-2 XL's neighbour: 1.31e9 parameters (5.2 GB in float32)."""


class _Attention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.qkv = nn.Linear(config.width, 3 * config.width)
        self.proj = nn.Linear(config.width, config.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out: torch.Tensor = self.proj(y.transpose(1, 2).reshape(b, t, d))
        return out


class _Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.width)
        self.attn = _Attention(config)
        self.ln2 = nn.LayerNorm(config.width)
        self.fc = nn.Linear(config.width, 4 * config.width)
        self.out = nn.Linear(4 * config.width, config.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        out: torch.Tensor = x + self.out(F.gelu(self.fc(self.ln2(x))))
        return out


class GPT(nn.Module):
    """`GPT(GPTConfig(...))(token_ids) -> logits`."""

    def __init__(self, config: GPTConfig = GPTConfig()) -> None:
        super().__init__()
        if config.width % config.heads:
            raise ValueError(f"width {config.width} is not a multiple of heads {config.heads}")
        self.config = config
        self.tokens = nn.Embedding(config.vocab, config.width)
        self.positions = nn.Embedding(config.context, config.width)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.layers))
        self.ln = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, config.vocab, bias=False)
        self.head.weight = self.tokens.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[-1]
        x = self.tokens(ids) + self.positions(torch.arange(t, device=ids.device))
        for block in self.blocks:
            x = block(x)
        logits: torch.Tensor = self.head(self.ln(x))
        return logits


def gpt(vocab: int = 50257, context: int = 1024, width: int = 768, layers: int = 12,
        heads: int = 12) -> GPT:
    """A GPT of the given size on the current default device (``with torch.device("meta"):``
    builds it without memory)."""
    return GPT(GPTConfig(vocab, context, width, layers, heads))
