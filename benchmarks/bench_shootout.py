"""`--only shootout`: does the initialization help training? Five policies trained on three
models (benchmarks/_shootout_tasks.py), --shootout-seeds seeds each (default 3), the same
recipe and the same batches in the same order for every policy at a given seed:

- ``gpt2``, ``llama``: transformers' GPT2LMHeadModel and LlamaForCausalLM (4 layers, width 64)
  as byte-level language models on the Python standard library's own .py files (no download;
  split by file), AdamW lr 1e-3;
- ``cnn``: a 12-layer plain ReLU CNN (no normalization) on scikit-learn's digits, AdamW
  lr 3e-4 (SGD with momentum made the final loss swing between 0.3 and 1.7 from step to step
  once the net fitted the training set: noise, not a comparison).

Policies: ``own`` (the model as constructed after ``torch.manual_seed(seed)``: transformers'
``_init_weights`` or torch's ``reset_parameters``, no weightinit call); ``auto``;
``auto(residual=zero)`` (``wi.Policy.preset("auto", residual="zero")``); ``lsuv``; the ``gpt2``
preset (N(0, 0.02) and the 1/sqrt(2 n_layer) residual scaling where it applies). Each non-own
policy is ``wi.init_model(model, policy, seed=seed, example_inputs=<the first training
batch>)`` on the same constructed model.

Prints per model the final validation cross-entropy (nats per byte or per digit) of each
policy: mean ± sample std over the seeds, min - max and each seed's value; then the acceptance
check, computed: ``auto`` passes on a model when mean(auto) <= mean(own) + spread, the spread
being the larger of the two policies' std over seeds. Writes a figure of the validation loss
curves (mean per policy, min-max band over seeds) to --shootout-figure (default
docs/figures/shootout.png). A policy that raises is reported with its error and the others
still run. About 10 minutes on 2 cores.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import statistics
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from _common import HERE
from _shootout_tasks import Task, cnn_task, lm_tasks, stdlib_corpus

import weightinit as wi

DEFAULT_FIGURE = HERE.parent / "docs" / "figures" / "shootout.png"
POLICIES = ("own", "auto", "auto(residual=zero)", "lsuv", "gpt2")


def _policy(name: str) -> str | wi.Policy | None:
    if name == "own":
        return None
    if name == "auto(residual=zero)":
        return wi.Policy.preset("auto", residual="zero")
    return name


@dataclasses.dataclass
class Run:
    seed: int
    steps: list[int]
    val_loss: list[float]  # at each of `steps`; the last one is the final loss
    seconds: float  # construction, init and training, evaluations included
    error: str | None = None
    init_seconds: float = 0.0  # the weightinit call alone
    accuracy: float = math.nan  # final validation accuracy (next byte, or digit)

    @property
    def final(self) -> float:
        if self.error is not None or not self.val_loss:
            return math.nan
        return self.val_loss[-1]


def train(task: Task, policy_name: str, seed: int) -> Run:
    """Build `task`'s model under torch.manual_seed(seed), initialize it by the policy, train
    it with the task's recipe on the seed's batches, and record the validation loss."""
    begin = time.perf_counter()
    torch.manual_seed(seed)
    model = task.build()
    indices = task.batch_indices(seed)
    inputs, _ = task.batch(indices[0])
    policy = _policy(policy_name)
    run = Run(seed, [], [], 0.0)
    if policy is not None:
        start = time.perf_counter()
        try:
            wi.init_model(model, policy, seed=seed, example_inputs=task.example_inputs(inputs))
            run.init_seconds = time.perf_counter() - start
        except Exception as error:  # report it and go on with the other policies
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            run.error = f"{type(error).__name__}: {message}"[:300]
            run.seconds = time.perf_counter() - begin
            return run
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = task.optimizer(params)
    model.train()
    for step in range(task.steps + 1):
        if step % task.eval_every == 0 or step == task.steps:
            loss_value, run.accuracy = task.evaluate(model)
            run.steps.append(step)
            run.val_loss.append(loss_value)
            if not math.isfinite(loss_value):
                break
        if step == task.steps:
            break
        loss = task.loss(model, *task.batch(indices[step]))
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        if task.clip is not None:
            torch.nn.utils.clip_grad_norm_(params, task.clip)
        optimizer.step()
    if run.steps[-1] != task.steps:  # diverged: the final loss is the non-finite one
        run.val_loss[-1], run.accuracy = math.nan, math.nan
    run.seconds = time.perf_counter() - begin
    return run


def _summary(runs: list[Run]) -> dict[str, object]:
    finals = [r.final for r in runs]
    errors = sorted({r.error for r in runs if r.error is not None})
    finite = [f for f in finals if math.isfinite(f)]
    ok = len(finite) == len(finals) and len(finals) > 0
    return {
        "final": [f if math.isfinite(f) else None for f in finals],
        "mean": statistics.fmean(finite) if ok else None,
        "std": statistics.stdev(finite) if ok and len(finite) > 1 else (0.0 if ok else None),
        "min": min(finite) if ok else None, "max": max(finite) if ok else None,
        "accuracy": statistics.fmean(r.accuracy for r in runs) if ok else None,
        "diverged": sum(1 for r in runs if r.error is None and not math.isfinite(r.final)),
        "errors": errors, "seconds": [round(r.seconds, 2) for r in runs],
        "init_seconds": [round(r.init_seconds, 3) for r in runs],
        "curves": {"steps": max((r.steps for r in runs), key=len, default=[]),
                   "val_loss": [[v if math.isfinite(v) else None for v in r.val_loss]
                                for r in runs]},
    }


def _check(policies: dict[str, dict[str, object]]) -> dict[str, object]:
    """auto against own: mean(auto) - mean(own), the spread (the larger std), the verdict."""
    auto, own = policies.get("auto"), policies.get("own")
    if auto is None or own is None:
        return {"verdict": "not run"}
    if own["mean"] is None:
        return {"verdict": "own init did not train"}
    if auto["mean"] is None:
        return {"verdict": "FAIL: auto crashed or diverged", "passed": False}
    a, o = float(auto["mean"]), float(own["mean"])  # type: ignore[arg-type]
    spread = max(float(auto["std"]), float(own["std"]))  # type: ignore[arg-type]
    delta = a - o
    if delta < -spread:
        verdict = "better than own beyond the spread"
    elif delta <= spread:
        verdict = "within the seed spread of own"
    else:
        verdict = "WORSE than own beyond the spread"
    return {"auto": a, "own": o, "delta": delta, "spread": spread, "verdict": verdict,
            "passed": delta <= spread}


def _cell(summary: dict[str, object]) -> str:
    if summary["errors"]:
        return "error"
    if summary["mean"] is None:
        return f"diverged in {summary['diverged']} of {len(summary['final'])}"  # type: ignore[arg-type]
    return f"{summary['mean']:.4f} ± {summary['std']:.4f}   {summary['min']:.4f} - " \
           f"{summary['max']:.4f}"


def _print_task(task: Task, policies: dict[str, dict[str, object]]) -> None:
    print(f"  {task.name}: {task.description}", flush=True)
    print(f"    {task.recipe}", flush=True)
    print(f"    {'policy':<21} {'mean ± std':>17}   {'min - max':<15}  {'per seed':<22} "
          "s/run  accuracy", flush=True)
    for name, summary in policies.items():
        seeds = " ".join("  nan " if f is None else f"{f:.4f}"
                         for f in summary["final"])  # type: ignore[attr-defined]
        seconds = statistics.fmean(summary["seconds"])  # type: ignore[arg-type]
        accuracy = "" if summary["accuracy"] is None else f"{summary['accuracy']:.3f}"
        print(f"    {name:<21} {_cell(summary):<35}  {seeds:<22} {seconds:5.1f}  {accuracy:>8}",
              flush=True)
        for error in summary["errors"]:  # type: ignore[attr-defined]
            print(f"      {error}", flush=True)


def figure(results: dict[str, dict[str, dict[str, object]]], path: Path) -> None:
    """Validation loss against step, one column per model: the mean over seeds per policy and
    its min-max band, over the whole run (top) and zoomed on its second half (bottom).
    matplotlib's Agg backend, its global style untouched."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(results), 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(results), squeeze=False)
    styles = {"own": ("black", "-"), "auto": ("tab:blue", "-"),
              "auto(residual=zero)": ("tab:cyan", "--"), "lsuv": ("tab:orange", "-"),
              "gpt2": ("tab:red", "-")}
    for column, (model, policies) in enumerate(results.items()):
        top, bottom = axes[0][column], axes[1][column]
        late: list[float] = []  # finite values in the second half, for the zoom
        for name, summary in policies.items():
            curves = summary["curves"]
            steps: list[int] = curves["steps"]  # type: ignore[index]
            rows = [r + [None] * (len(steps) - len(r))
                    for r in curves["val_loss"] if r]  # type: ignore[index]
            if not rows:
                continue
            values = np.array([[math.nan if v is None else v for v in r] for r in rows])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(values, axis=0)
                low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
            color, style = styles.get(name, ("gray", ":"))
            label = name if summary["mean"] is None else f"{name} {summary['mean']:.3f}"
            for ax in (top, bottom):
                ax.plot(steps, mean, color=color, ls=style, label=label, lw=1.5)
                ax.fill_between(steps, low, high, color=color, alpha=0.15, lw=0)
            half = np.asarray(steps) >= steps[-1] / 2
            late += [float(v) for v in values[:, half].ravel() if math.isfinite(v)]
        chance = math.log(10 if model == "cnn" else 256)
        top.axhline(chance, color="gray", lw=0.8, ls=":")
        top.set_ylim(top=chance * 1.2)
        top.set_title(f"{model}: validation loss (mean, min-max over seeds)", fontsize=9)
        top.legend(fontsize=7, title="final mean", title_fontsize=7)
        if late:
            low_y, high_y = min(late), min(max(late), chance)
            pad = 0.05 * (high_y - low_y) + 1e-3
            bottom.set_ylim(low_y - pad, high_y + pad)
        if steps:
            bottom.set_xlim(max(steps) / 2, max(steps))
        bottom.set_title(f"{model}: second half, zoomed", fontsize=9)
        bottom.set_xlabel("step")
        for ax in (top, bottom):
            ax.set_ylabel("nats per byte" if model != "cnn" else "nats per digit")
            ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def run(seeds: int = 3, figure_path: str | Path | None = DEFAULT_FIGURE,
        models: Sequence[str] | None = None, threads: int = 1) -> dict[str, object]:
    """The shootout on `threads` torch threads (default 1: these models gain little from a
    second thread, and one thread is not slowed 10-100x by a busy neighbour); the previous
    thread count is restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(seeds, None if figure_path is None else Path(figure_path), models)
    finally:
        torch.set_num_threads(previous)


def _run(seeds: int, figure_path: Path | None,
         models: Sequence[str] | None) -> dict[str, object]:
    begin = time.perf_counter()
    tasks: list[Task] = []
    out: dict[str, object] = {"policies": list(POLICIES), "seeds": list(range(seeds)),
                              "threads": torch.get_num_threads()}
    if models is None or {"gpt2", "llama"} & set(models):
        if importlib.util.find_spec("transformers") is None:
            print("  gpt2, llama skipped: transformers is not installed", flush=True)
        else:
            corpus = stdlib_corpus()
            out["corpus"] = corpus.info
            info = corpus.info
            print(f"  data: {info['files']} files of {info['source']}, Python "
                  f"{info['python']}: {info['train_bytes']:,} train / {info['val_bytes']:,} "
                  f"val bytes, sha256 {info['sha256']}", flush=True)
            tasks += [t for t in lm_tasks(corpus) if models is None or t.name in models]
    if models is None or "cnn" in models:
        tasks.append(cnn_task())
    results: dict[str, dict[str, dict[str, object]]] = {}
    checks: dict[str, object] = {}
    for task in tasks:
        policies = {name: _summary([train(task, name, seed) for seed in range(seeds)])
                    for name in POLICIES}
        results[task.name] = policies
        checks[task.name] = _check(policies)
        _print_task(task, policies)
    print("  acceptance: auto no worse than own init beyond the seed spread "
          "(mean(auto) <= mean(own) + max(std)):", flush=True)
    for model, check in checks.items():
        c: dict[str, object] = check  # type: ignore[assignment]
        if "delta" in c:
            print(f"    {model:<6} auto {c['auto']:.4f} vs own {c['own']:.4f}: "
                  f"{c['delta']:+.4f} (spread {c['spread']:.4f}): {c['verdict']}", flush=True)
        else:
            print(f"    {model:<6} {c['verdict']}", flush=True)
    out["models"] = {t.name: {"description": t.description, "recipe": t.recipe,
                              "policies": results[t.name], "check": checks[t.name]}
                     for t in tasks}
    if figure_path is not None and results:
        if importlib.util.find_spec("matplotlib") is None:
            print("  figure skipped: matplotlib is not installed", flush=True)
        else:
            figure(results, figure_path)
            out["figure"] = str(figure_path)
            print(f"  figure: {figure_path}", flush=True)
    out["wall_seconds"] = time.perf_counter() - begin
    threads = torch.get_num_threads()
    print(f"  wall time {out['wall_seconds']:.0f} s ({threads} torch "
          f"thread{'s' * (threads != 1)})", flush=True)
    return out
