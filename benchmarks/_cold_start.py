"""Run by the diagnose section (`bench_diagnose.py`) in a fresh interpreter, which is the
point: what a CLI run pays once. Times `import torch`, `import weightinit` and the first two
`wi.diagnose` calls on an MLP of 4 x Linear(256)+ReLU with a batch of (256, 256); prints them
as one JSON object on the last line.

    python benchmarks/_cold_start.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    import torch
    from torch import nn

    imported_torch = time.perf_counter()
    import weightinit as wi

    imported = time.perf_counter()
    torch.set_num_threads(args.threads)
    layers: list[nn.Module] = []
    for _ in range(4):
        layers += [nn.Linear(256, 256), nn.ReLU()]
    model, batch = nn.Sequential(*layers), torch.randn(256, 256)
    times = []
    for _ in range(2):
        begin = time.perf_counter()
        wi.diagnose(model, batch)
        times.append(time.perf_counter() - begin)
    print(json.dumps({"import_torch": imported_torch - start,
                      "import_weightinit": imported - imported_torch,
                      "first_diagnose": times[0], "second_diagnose": times[1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
