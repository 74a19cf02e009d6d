"""Run by the construct section (`bench_construct.py`) in a fresh interpreter, so that the peak
RSS is this one model's alone. Builds a transformers model from its config either as
transformers does (`--how own`: allocated and initialized by its `_init_weights`) or with
``wi.build(cls, config)`` (`--how build`: built on the meta device, then materialized once by
`auto`), and prints the wall time, the RSS before and the peak RSS as one JSON object on the
last line. For `build`, a tiny model is built first (numba and the keyed kernel loaded from
numba's disk cache, the meta-device machinery imported) and reported as "warmup", not timed.

    python benchmarks/_build_hf.py --model llama-1b --how build --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from _construct import peak_rss_bytes

MODELS = ("gpt2", "llama-1b")


def config(name: str, transformers: Any) -> tuple[Any, Any]:
    """(model class, config): GPT-2 small (124M), or a TinyLlama-1.1B-shaped Llama."""
    if name == "gpt2":
        return transformers.GPT2LMHeadModel, transformers.GPT2Config()
    return transformers.LlamaForCausalLM, transformers.LlamaConfig(
        vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
        num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=MODELS, required=True)
    parser.add_argument("--how", choices=("own", "build"), required=True)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    import torch
    import transformers

    import weightinit as wi

    torch.set_num_threads(args.threads)
    cls, cfg = config(args.model, transformers)
    warm = 0.0
    if args.how == "build":
        begin = time.perf_counter()
        wi.build(transformers.GPT2LMHeadModel, transformers.GPT2Config(
            n_layer=1, n_embd=32, n_head=2, vocab_size=97, n_positions=16))
        warm = time.perf_counter() - begin
    before = peak_rss_bytes()
    begin = time.perf_counter()
    model = cls(cfg) if args.how == "own" else wi.build(cls, cfg)
    seconds = time.perf_counter() - begin
    peak = peak_rss_bytes()
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    print(json.dumps({"seconds": seconds, "rss_before": before, "peak_rss": peak,
                      "model_bytes": model_bytes, "warmup": warm,
                      "n_params": sum(p.numel() for p in model.parameters())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
