"""Helpers shared by the benchmark sections: timing, the small models, fresh processes."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from torch import nn

HERE = Path(__file__).resolve().parent


def median_seconds(fn: Callable[[], object], reps: int) -> float:
    """The median wall time of `reps` calls of `fn`."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def mlp(depth: int = 30, width: int = 256) -> nn.Module:
    """`depth` x (Linear(width, width), ReLU)."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers)


def cnn(depth: int = 6, channels: int = 32, classes: int = 10) -> nn.Module:
    """`depth` x (conv3x3(channels), BatchNorm2d, ReLU), then avgpool and Linear(channels,
    classes); input (batch, 3, H, W)."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Conv2d(3 if i == 0 else channels, channels, 3, padding=1),
                   nn.BatchNorm2d(channels), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes)]
    return nn.Sequential(*layers)


def run_script(name: str, *args: str) -> dict[str, float]:
    """Run benchmarks/`name` in a fresh interpreter (this one's executable) with `args`, and
    return the JSON object it prints on its last line of stdout."""
    proc = subprocess.run([sys.executable, str(HERE / name), *args], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmarks/{name} {' '.join(args)} exited with {proc.returncode}:"
                           f"\n{proc.stderr.strip()}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
