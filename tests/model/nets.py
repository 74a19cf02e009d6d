"""Small networks with a known architecture, shared by the model tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp(depth: int, width: int, activation: type[nn.Module] = nn.ReLU, *, d_in: int | None = None,
        d_out: int | None = None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(d_in if (i == 0 and d_in) else width,
                                d_out if (i == depth - 1 and d_out) else width))
        if i < depth - 1:
            layers.append(activation())
    return nn.Sequential(*layers)


class Mixed(nn.Module):
    """relu, tanh, gelu, silu, then a functional x * sigmoid(x) (silu again)."""

    FEEDS = ("linear", "relu", "tanh", "gelu", "silu", "silu")

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.fc = nn.ModuleList(nn.Linear(width, width) for _ in range(6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc[0](x))
        x = torch.tanh(self.fc[1](x))
        x = F.gelu(self.fc[2](x))
        x = nn.functional.silu(self.fc[3](x))
        x = self.fc[4](x)
        x = x * torch.sigmoid(x)
        return self.fc[5](x)


class Block(nn.Module):
    """torchvision's BasicBlock: conv-bn-relu-conv-bn, + shortcut (1x1 conv-bn when the
    shape changes), relu; ReLU in place, the add in place, as torchvision writes them."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.layer1 = nn.Sequential(Block(8, 8), Block(8, 8))
        self.layer2 = nn.Sequential(Block(8, 16, stride=2), Block(16, 16))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Padded(nn.Module):
    """An embedding with a padding row, a conv, BatchNorm (buffers to recompute) and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8, padding_idx=3)
        self.conv = nn.Conv1d(8, 8, 3, padding=1)
        self.bn = nn.BatchNorm1d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(self.emb(ids).transpose(1, 2)))
        return self.fc(torch.relu(x).mean(-1))


def snapshot(model: nn.Module) -> dict[str, object]:
    """Every parameter, buffer and grad (cloned), and every module's training flag."""
    state: dict[str, object] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for name, param in model.named_parameters():
        state[f"grad:{name}"] = None if param.grad is None else param.grad.clone()
    state["modes"] = [m.training for m in model.modules()]
    return state


def assert_unchanged(model: nn.Module, before: dict[str, object]) -> None:
    after = snapshot(model)
    assert after.keys() == before.keys()
    for key, value in before.items():
        other = after[key]
        if isinstance(value, torch.Tensor):
            assert isinstance(other, torch.Tensor) and torch.equal(value, other), key
        else:
            assert value == other, key


class Scaled(nn.Module):
    """A bare nn.Parameter weightinit has no role for: "auto" keeps it as it is."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.scale
