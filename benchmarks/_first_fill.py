"""Run by the fills section (`bench_fills.py`) in a fresh interpreter, which is the point: what
a new process pays before its first keyed fill. Times ``import weightinit`` (torch already
imported) and two keyed fills of a (768, 768) float32 tensor; the first loads numba and the
kernel (from numba's disk cache, or compiling it when the cache is empty: set
NUMBA_CACHE_DIR to an empty folder for that). Prints one JSON object on the last line.

    python benchmarks/_first_fill.py
"""

from __future__ import annotations

import json
import sys
import time


def main() -> int:
    import torch

    start = time.perf_counter()
    import weightinit as wi

    imported = time.perf_counter()
    times = []
    for _ in range(2):
        begin = time.perf_counter()
        wi.Normal(0.02).fill_(torch.empty(768, 768), key="w", seed=0)
        times.append(time.perf_counter() - begin)
    print(json.dumps({"import": imported - start, "first_fill": times[0],
                      "second_fill": times[1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
