"""A small model for the sharded-materialize tests whose sizes no mesh dim divides evenly:
under torchtitan's layout (ColwiseParallel / RowwiseParallel on "tp", then FSDP2 on "dp" of a
2x2 mesh) every sharded dim splits unevenly and the same-dim ones become _StridedShard. Imported
by tests/model/_dist_worker.py and tests/model/test_materialize.py (by path)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Uneven(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(13, 10)  # Rowwise: Shard(0), 13 rows -> 7 / 6 -> 4 / 3, 3 / 3
        self.up = nn.Linear(10, 14)  # Colwise: weight and bias Shard(0), 14 -> 7 / 7 -> 4 / 3
        self.down = nn.Linear(14, 9)  # Rowwise: weight Shard(1), bias Replicate
        self.head = nn.Linear(9, 5)  # Colwise: 5 -> 3 / 2 -> 2 / 1, 1 / 1

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.down(F.gelu(self.up(self.emb(ids))))
        out: torch.Tensor = self.head(torch.relu(x))
        return out


TP_PLAN = {"emb": "rowwise", "up": "colwise", "down": "rowwise", "head": "colwise"}
