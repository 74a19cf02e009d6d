"""The shootout's three tasks (bench_shootout.py): their data, models and training recipes.

- ``gpt2`` and ``llama``: byte-level language models (vocabulary 256) on the Python standard
  library's own top-level ``*.py`` files, read from ``os.path.dirname(os.__file__)`` sorted by
  name; every tenth file (by that order) is validation, the rest training, so the two never
  share a file. No download: the data is the same on any machine with the same CPython release
  (patch releases edit a few files; the corpus digest in the output says which data a run
  used). Models from transformers' configs, built with ``torch.manual_seed(seed)``.
- ``cnn``: a deep plain CNN (12 conv3x3 + ReLU, no normalization, no residuals) on
  scikit-learn's digits as 1 x 8 x 8 images (``weightinit.studies.load_digits``: no download,
  fixed train/test split), where the initialization decides whether the signal survives.

A task's training batches are a pure function of the seed (a private generator), so every
policy trained with one seed sees the same batches in the same order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import platform
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

Forward = Callable[[nn.Module, torch.Tensor], torch.Tensor]

SEQ_LEN = 64  # bytes per training sequence (the model predicts each from the ones before)
LM_BATCH = 24
LM_STEPS = 200
VAL_SEQUENCES = 128  # fixed validation windows, evenly spaced through the validation files
EVAL_EVERY = 20
LM_LR = 1e-3
CNN_BATCH = 64
CNN_STEPS = 200  # about 9 epochs of the 1438 training digits
CNN_LR = 3e-4
CNN_LABEL_SMOOTHING = 0.1  # training loss only: keeps the validation loss from being
# dominated by a few confidently wrong digits once the training set is fitted


@dataclasses.dataclass(frozen=True)
class Task:
    """One model family, its data and its training recipe."""

    name: str
    description: str
    build: Callable[[], nn.Module]  # called after torch.manual_seed(seed)
    forward: Forward  # (model, inputs) -> logits, classes on the last dim
    example_inputs: Callable[[torch.Tensor], object]  # a training input batch -> init_model's
    train_inputs: torch.Tensor  # what batches index (LM: the corpus; CNN: the images)
    train_targets: torch.Tensor | None  # CNN labels; None for the LMs (next byte)
    val_inputs: torch.Tensor
    val_targets: torch.Tensor
    batch_size: int
    steps: int
    eval_every: int
    optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer]
    recipe: str
    clip: float | None = None
    label_smoothing: float = 0.0  # in the training loss only

    def batch_indices(self, seed: int) -> torch.Tensor:
        """(steps, batch_size) offsets into the corpus (LM) or sample indices (CNN)."""
        generator = torch.Generator().manual_seed(seed)
        if self.train_targets is None:
            high = len(self.train_inputs) - SEQ_LEN - 1
            return torch.randint(0, high, (self.steps, self.batch_size), generator=generator)
        n = len(self.train_inputs)
        epochs = math.ceil(self.steps * self.batch_size / n)
        order = torch.cat([torch.randperm(n, generator=generator) for _ in range(epochs)])
        return order[:self.steps * self.batch_size].view(self.steps, self.batch_size)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.train_targets is None:
            windows = self.train_inputs[index[:, None] + torch.arange(SEQ_LEN + 1)]
            return windows[:, :-1], windows[:, 1:]
        return self.train_inputs[index], self.train_targets[index]

    def loss(self, model: nn.Module, inputs: torch.Tensor,
             targets: torch.Tensor) -> torch.Tensor:
        """The training loss: cross-entropy, with the task's label smoothing."""
        logits = self.forward(model, inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                               label_smoothing=self.label_smoothing)

    def evaluate(self, model: nn.Module, chunk: int = 64) -> tuple[float, float]:
        """(mean cross-entropy in nats per byte or per digit, accuracy) over the fixed
        validation set; eval mode, no grad, no label smoothing."""
        was_training = model.training
        model.eval()
        total, correct, count = 0.0, 0, 0
        with torch.no_grad():
            for start in range(0, len(self.val_inputs), chunk):
                logits = self.forward(model, self.val_inputs[start:start + chunk])
                logits = logits.reshape(-1, logits.shape[-1])
                targets = self.val_targets[start:start + chunk].reshape(-1)
                total += float(F.cross_entropy(logits, targets, reduction="sum"))
                correct += int((logits.argmax(-1) == targets).sum())
                count += targets.numel()
        model.train(was_training)
        return total / count, correct / count


# -- the standard library as a byte corpus -------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Corpus:
    train: torch.Tensor  # uint8 bytes as int64, files concatenated
    val: torch.Tensor
    info: dict[str, object]


def stdlib_corpus() -> Corpus:
    """The standard library's top-level ``*.py`` files, sorted by name; file i is validation
    when i % 10 == 0, training otherwise; each split the concatenation of its files."""
    root = Path(os.path.dirname(os.__file__))
    files = sorted(p for p in root.glob("*.py") if p.is_file())
    if len(files) < 20:
        raise RuntimeError(f"expected the standard library's .py files in {root}, found "
                           f"{len(files)}")
    train_parts: list[bytes] = []
    val_parts: list[bytes] = []
    digest = hashlib.sha256()
    for i, path in enumerate(files):
        data = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + data)
        (val_parts if i % 10 == 0 else train_parts).append(data)
    train, val = b"".join(train_parts), b"".join(val_parts)
    info: dict[str, object] = {
        "source": f"{root}/*.py (sorted; every 10th file is validation)",
        "python": platform.python_version(), "files": len(files),
        "train_bytes": len(train), "val_bytes": len(val), "sha256": digest.hexdigest()[:16],
    }
    return Corpus(_bytes(train), _bytes(val), info)


def _bytes(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long()


def _val_windows(val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    starts = torch.linspace(0, len(val) - SEQ_LEN - 2, VAL_SEQUENCES).long()
    windows = val[starts[:, None] + torch.arange(SEQ_LEN + 1)]
    return windows[:, :-1], windows[:, 1:]


def _lm_forward(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    logits: torch.Tensor = model(input_ids=inputs).logits
    return logits


def _adamw(params: list[nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=LM_LR)


def gpt2_model() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=256, n_positions=SEQ_LEN, n_embd=64, n_layer=4, n_head=4,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False,
                        bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config)


def llama_model() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=176,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=SEQ_LEN, use_cache=False, bos_token_id=0,
                         eos_token_id=0)
    return LlamaForCausalLM(config)


def lm_tasks(corpus: Corpus) -> list[Task]:
    val_inputs, val_targets = _val_windows(corpus.val)
    recipe = (f"AdamW lr {LM_LR} (torch defaults otherwise), no warmup or schedule, grad-norm "
              f"clip 1.0, {LM_STEPS} steps of {LM_BATCH} x {SEQ_LEN} bytes, val = "
              f"{VAL_SEQUENCES} x {SEQ_LEN} bytes")

    def task(name: str, description: str, build: Callable[[], nn.Module]) -> Task:
        return Task(name=name, description=description, build=build, forward=_lm_forward,
                    example_inputs=lambda x: {"input_ids": x}, train_inputs=corpus.train,
                    train_targets=None, val_inputs=val_inputs, val_targets=val_targets,
                    batch_size=LM_BATCH, steps=LM_STEPS, eval_every=EVAL_EVERY,
                    optimizer=_adamw, recipe=recipe, clip=1.0)

    return [
        task("gpt2", "GPT2LMHeadModel: 4 layers, width 64, 4 heads, tied embeddings, no "
             "dropout", gpt2_model),
        task("llama", "LlamaForCausalLM: 4 layers, width 64, 4 heads (2 kv), SwiGLU 176, "
             "untied", llama_model),
    ]


# -- a deep plain CNN on digits ------------------------------------------------------------

CNN_STAGES = ((16, 4), (32, 4), (64, 4))  # (channels, conv layers) at 8x8, 4x4, 2x2


def cnn_model() -> nn.Module:
    """Per stage: conv3x3 + ReLU layers, then 2x2 max-pooling between stages; global average
    pooling and a Linear classifier at the end. No normalization, no residuals."""
    layers: list[nn.Module] = []
    channels_in = 1
    for stage, (channels, depth) in enumerate(CNN_STAGES):
        if stage:
            layers.append(nn.MaxPool2d(2))
        for _ in range(depth):
            layers += [nn.Conv2d(channels_in, channels, 3, padding=1), nn.ReLU()]
            channels_in = channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels_in, 10)]
    return nn.Sequential(*layers)


def _cnn_forward(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    logits: torch.Tensor = model(inputs)
    return logits


def _cnn_adamw(params: list[nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=CNN_LR)


def cnn_task() -> Task:
    from weightinit.studies import load_digits

    digits = load_digits()
    images = digits.x_train.view(-1, 1, 8, 8)
    depth = sum(d for _, d in CNN_STAGES)
    return Task(
        name="cnn", build=cnn_model, forward=_cnn_forward,
        description=f"plain CNN on digits: {depth} conv3x3 + ReLU "
                    f"({'/'.join(str(c) for c, _ in CNN_STAGES)} channels), no norm",
        example_inputs=lambda x: (x,), train_inputs=images, train_targets=digits.y_train,
        val_inputs=digits.x_test.view(-1, 1, 8, 8), val_targets=digits.y_test,
        batch_size=CNN_BATCH, steps=CNN_STEPS, eval_every=EVAL_EVERY, optimizer=_cnn_adamw,
        label_smoothing=CNN_LABEL_SMOOTHING,
        recipe=f"AdamW lr {CNN_LR} (torch defaults otherwise), training loss with label "
               f"smoothing {CNN_LABEL_SMOOTHING}, {CNN_STEPS} steps of {CNN_BATCH} digits "
               f"({len(images)} training, {len(digits.y_test)} validation, fixed split)")
