"""Writing the demo's report folder: results.json, the figures and index.html."""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping
from typing import Any

from .._errors import InitError
from .._render import write_text
from ._figures import demo_figures, png
from ._page import demo_html


def _jsonable(value: Any, where: str = "results") -> Any:
    """`value` with NaN and Inf as None, tuples as lists; InitError on anything not JSON."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise InitError(f"{where} is a {type(value).__name__} ({value!r:.80}), which JSON cannot "
                    "hold: results must hold only dicts, lists, strings, numbers, booleans "
                    "and None.")


def _check_folder(target: str) -> None:
    """InitError unless `target` is a folder or can be created as one."""
    if os.path.exists(target) and not os.path.isdir(target):
        raise InitError(f"`out_dir` ({target!r}) is a file, not a folder: choose a folder "
                        "to write the demo's report into (it is created if missing).")
    above = os.path.dirname(os.path.abspath(target))
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise InitError(f"`out_dir` ({target!r}) could not be created: {above!r} is a file, "
                        "not a folder.")


def save_demo(results: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Write the demo's results into the folder `out_dir` (created, parents too):
    results.json (NaN and Inf as null, indent 2), the figures (depth.png, training.png,
    beyond_relu.png) and index.html (the page of `demo_html`). Files of those names are
    replaced; nothing else in the folder is touched.

    Returns the paths written: {"index": ..., "results": ..., "depth": ..., "training": ...,
    "beyond_relu": ...}.

    Raises:
        InitError: `out_dir` is a file or cannot be created, matplotlib is not installed, or
            `results` lacks a part of the schema or holds one number where it has one per
            seed (an older demo's results). Nothing is written then.
    """
    target = os.fspath(out_dir)
    _check_folder(target)  # before drawing: a bad path fails at once
    text = json.dumps(_jsonable(results), indent=2, allow_nan=False) + "\n"
    pngs = {key: png(figure) for key, figure in demo_figures(results).items()}
    index = demo_html(results, pngs)
    try:
        os.makedirs(target, exist_ok=True)
    except OSError as error:
        raise InitError(f"`out_dir` ({target!r}) could not be created: {error}.") from None
    paths = {"index": os.path.join(target, "index.html"),
             "results": os.path.join(target, "results.json")}
    write_text(paths["results"], text)
    for key, data in pngs.items():
        paths[key] = os.path.join(target, f"{key}.png")
        with open(paths[key], "wb") as binary:
            binary.write(data)
    write_text(paths["index"], index)
    return paths
