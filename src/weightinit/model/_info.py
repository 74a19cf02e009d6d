"""`ParamInfo`: the one record per parameter that flows from discovery to the policy to the plan.

`_roles` creates it from the module that owns the parameter (role, fans, aliases), discovery
adds what the forward pass showed (feed, residual structure, a note), policies match and
compute on it, and `PlanRow.from_info` turns it and the chosen spec into a row of the plan.
"""

from __future__ import annotations

import dataclasses

from ..theory import Fans
from ._dataflow import UNKNOWN, Feed


@dataclasses.dataclass(frozen=True)
class ParamId:
    """Which parameter, and what it is, as both `ParamInfo` and `PlanRow` say it.

    Attributes:
        name: the qualified name (the canonical one, when the parameter is tied).
        aliases: the other names of a tied parameter.
        shape: its shape.
        role: what it is (``"linear.weight"``, ``"norm.bias"``, ... see `wi.ROLES`).
        layer: the owning module's class name; `module` its qualified name.
    """

    name: str
    aliases: tuple[str, ...]
    shape: tuple[int, ...]
    role: str
    layer: str
    module: str


@dataclasses.dataclass(frozen=True)
class ParamInfo(ParamId):
    """Everything a rule can match on and a preset can compute from, for one parameter:
    its `ParamId` fields (name, aliases, shape, role, layer, module), and

    Attributes:
        fans: from the logical layout (per block for packed q/k/v and recurrent gates).
        torch_fans: torch's ``_calculate_fan_in_and_fan_out`` of the raw shape.
        feed: what feeds the layer (activation label, source, second moment).
        residual_end: the layer ends a residual branch (its output reaches a residual add).
        n_residual: residual branches found in the model.
        branch_layers: weight layers in the residual branch this layer sits in (0: none).
        output_layer: the layer's output is the model's output.
        tied_output: an embedding whose weight is also an output projection.
        gates: stacked gates in a recurrent weight (LSTM 4, GRU 3, else 1).
        weight_shape: the shape of the owning module's ``weight`` (for biases, whose torch
            default depends on it).
        attr: the parameter's attribute on its module (``"weight"``, ``"in_proj_weight"``).
        padding_idx: an embedding's padding row (kept at 0 when the parameter is filled).
        module_type: the owning module's class (rules match subclasses of a given class).
        note: what discovery noticed about the layer (``"called 2x"``, ``"not called"``).
        std_factor: a factor the forward pass asks of the weight's std: a query projection
            whose attention scores lack 1/sqrt(d) (T5) gets 1/sqrt(d), folded into its init.
        scale_offset: c in a norm's ``y = (c + w) * x_hat``, measured by probing its forward
            (1 for Gemma's RMSNorm): a scale s is the weight s - c.
        stream_dim: an embedding summed into one stream with an embedding tied to an output
            layer: that embedding's dim (they share its scale).
        router: the layer's output only chooses (a softmax or a top-k: an MoE router).
        score_bias: an embedding whose lookup is added to attention scores (a position bias).
        keep: why `auto` must keep the parameter as the model set it (frozen, marked not to be
            re-initialized, a deliberate offset); empty when nothing says so.
    """

    fans: Fans | None
    torch_fans: Fans | None
    feed: Feed = UNKNOWN
    residual_end: bool = False
    n_residual: int = 0
    branch_layers: int = 0
    output_layer: bool = False
    tied_output: bool = False
    gates: int = 1
    weight_shape: tuple[int, ...] | None = None
    attr: str = ""
    padding_idx: int | None = None
    module_type: type | None = dataclasses.field(default=None, compare=False, repr=False)
    note: str = ""
    std_factor: float = 1.0
    scale_offset: float = 0.0
    stream_dim: int | None = None
    router: bool = False
    score_bias: bool = False
    keep: str = ""

    @property
    def activation(self) -> str:
        """The label of what feeds the layer (``"relu"``, ``"measured"``, ``"unknown"``)."""
        return self.feed.label

    @property
    def is_weight(self) -> bool:
        """A weight (not a bias of any kind)."""
        return not self.role.endswith("bias") and not self.role.startswith("rnn.bias")
