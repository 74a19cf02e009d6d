"""Small transformer-shaped nets for the diagnose structure tests, initialized by hand (not by
`auto`, so that these tests pin diagnose alone): a GPT-like LM (token + learned position
embeddings, pre-norm blocks of attention and an MLP or a dense mixture of experts), two
independent towers, and a Gemma-like RMSNorm whose identity is w = 0."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

VOCAB, SEQ, WIDTH, HEADS = 64, 16, 64, 2


class OnePlusRMS(nn.Module):
    """x_hat * (1 + w), as Gemma's RMSNorm: the identity at w = 0. Its name does not say
    "Norm": diagnose must tell it is a normalization from what it does."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * (1 + self.weight)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, explicit: bool) -> None:
        super().__init__()
        self.heads, self.explicit = heads, explicit
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim, bias=False) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        if self.explicit:
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
            y = torch.softmax(scores, dim=-1) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v)
        return self.o(y.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Experts(nn.Module):
    """A dense mixture of experts: stacked expert weights (one 3-d parameter per layer) mixed
    by a softmax router."""

    def __init__(self, dim: int, experts: int = 4) -> None:
        super().__init__()
        self.router = nn.Linear(dim, experts, bias=False)
        self.w1 = nn.Parameter(torch.empty(experts, dim, 2 * dim))
        self.w2 = nn.Parameter(torch.empty(experts, 2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = torch.softmax(self.router(x), dim=-1)
        hidden = F.gelu(torch.einsum("bnd,edh->bneh", x, self.w1))
        out = torch.einsum("bneh,ehd->bned", hidden, self.w2)
        return (gates.unsqueeze(-1) * out).sum(-2)


class Block(nn.Module):
    def __init__(self, dim: int, norm: type[nn.Module], explicit: bool, moe: bool,
                 layer_scale: float | None) -> None:
        super().__init__()
        self.n1, self.n2 = norm(dim), norm(dim)
        self.attn = Attention(dim, HEADS, explicit)
        self.mlp: nn.Module = Experts(dim) if moe else MLP(dim)
        self.gamma = None if layer_scale is None else nn.Parameter(
            torch.full((dim,), layer_scale))

    def _scaled(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.gamma is None else self.gamma * y  # LayerScale (CaiT, ConvNeXt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._scaled(self.attn(self.n1(x)))
        return x + self._scaled(self.mlp(self.n2(x)))


class TinyLM(nn.Module):
    def __init__(self, *, layers: int = 2, norm: type[nn.Module] = nn.LayerNorm,
                 explicit: bool = False, moe: bool = False,
                 layer_scale: float | None = None) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(VOCAB, WIDTH), nn.Embedding(SEQ, WIDTH)
        self.blocks = nn.ModuleList(Block(WIDTH, norm, explicit, moe, layer_scale)
                                    for _ in range(layers))
        self.norm = norm(WIDTH)
        self.head = nn.Linear(WIDTH, VOCAB, bias=False)
        self.reset()

    def reset(self) -> None:
        """Variance-preserving weights, each branch's last layer scaled by 1/sqrt(branches),
        embeddings N(0, 1), norms at the identity."""
        generator = torch.Generator().manual_seed(0)
        branches = 2 * len(self.blocks)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("gamma") or p.dim() == 1:
                    continue
                if p.dim() == 3:  # experts: (experts, fan_in, fan_out)
                    std = (math.sqrt(2.0) if name.endswith("w2") else 1.0) / math.sqrt(
                        p.shape[1])
                elif name.startswith(("wte", "wpe")):
                    std = 1.0
                else:
                    std = (math.sqrt(2.0) if name.endswith("fc2.weight") else 1.0) / math.sqrt(
                        p.shape[1])
                if name.endswith(("o.weight", "fc2.weight", "w2")):
                    std /= math.sqrt(branches)
                p.normal_(0.0, std, generator=generator)
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    p.zero_()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def token_ids(batch: int = 16) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, SEQ), generator=torch.Generator().manual_seed(1))


def tower(depth: int = 4, width: int = 64) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(width, width))
        if i < depth - 1:
            layers.append(nn.ReLU())
    generator = torch.Generator().manual_seed(depth)
    with torch.no_grad():
        for j, layer in enumerate(m for m in layers if isinstance(m, nn.Linear)):
            gain = 1.0 if j == 0 else math.sqrt(2.0)
            layer.weight.normal_(0.0, gain / math.sqrt(width), generator=generator)
            layer.bias.zero_()
    return nn.Sequential(*layers)


class Towers(nn.Module):
    """Two independent towers (CLIP's text and vision encoders) met only at the end."""

    def __init__(self) -> None:
        super().__init__()
        self.left, self.right = tower(), tower()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.left(x) * self.right(y)
