"""The demo's experiments: data, small models, the training recipe."""

from ._demo import demo_steps as demo_steps
from ._demo import initialize as initialize
from ._demo import run_demo as run_demo
from ._digits import RECIPE as RECIPE
from ._digits import Digits as Digits
from ._digits import TrainResult as TrainResult
from ._digits import load_digits as load_digits
from ._digits import mlp as mlp
from ._digits import train as train
from ._gpt import GPT as GPT
from ._gpt import GPT_1_3B as GPT_1_3B
from ._gpt import GPTConfig as GPTConfig
from ._gpt import gpt as gpt
from ._train import train_many as train_many

__all__ = ["GPT", "GPT_1_3B", "RECIPE", "Digits", "GPTConfig", "TrainResult", "demo_steps",
           "gpt", "initialize", "load_digits", "mlp", "run_demo", "train", "train_many"]
