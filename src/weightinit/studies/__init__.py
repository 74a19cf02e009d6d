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

__all__ = ["RECIPE", "Digits", "TrainResult", "demo_steps", "initialize", "load_digits", "mlp",
           "run_demo", "train"]
