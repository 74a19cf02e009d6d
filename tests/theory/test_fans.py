"""Tests for `wi.compute_fans`: fans from the logical layout (grouped and transposed convs,
embeddings, packed q/k/v, experts), checked against torch where torch is right."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.init import _calculate_fan_in_and_fan_out

import weightinit as wi
from weightinit.theory import LAYOUTS


def _torch_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    return _calculate_fan_in_and_fan_out(torch.empty(shape))


# --- where torch's convention is right (ungrouped linear and conv), we agree with it ----------


@pytest.mark.parametrize(
    ("shape", "layout", "expected"),
    [
        ((10, 3), "linear", wi.Fans(3, 10, 1)),
        ((1, 1), "linear", wi.Fans(1, 1, 1)),
        ((16, 4, 5), "conv", wi.Fans(20, 80, 5)),  # conv1d
        ((64, 32, 3, 3), "conv", wi.Fans(288, 576, 9)),  # conv2d
        ((8, 4, 3, 5, 2), "conv", wi.Fans(120, 240, 30)),  # conv3d, non-square kernel
        ((7, 5, 1, 1), "conv", wi.Fans(5, 7, 1)),  # pointwise
    ],
)
def test_ungrouped_matches_torch(shape, layout, expected):
    fans = wi.compute_fans(shape, layout)
    assert fans == expected
    assert (fans.fan_in, fans.fan_out) == _torch_fans(shape)


@pytest.mark.parametrize(
    "module",
    [nn.Linear(12, 5), nn.Conv1d(3, 6, 4), nn.Conv2d(4, 8, (3, 2)), nn.Conv3d(2, 4, 3)],
    ids=["linear", "conv1d", "conv2d", "conv3d"],
)
def test_real_module_weights_match_torch(module):
    """Shapes as torch's own modules store them; a tensor is accepted in place of a shape."""
    layout = "linear" if isinstance(module, nn.Linear) else "conv"
    fans = wi.compute_fans(module.weight, layout)
    assert (fans.fan_in, fans.fan_out) == _calculate_fan_in_and_fan_out(module.weight)
    assert wi.compute_fans(module.weight.shape, layout) == fans
    assert wi.compute_fans(list(module.weight.shape), layout) == fans


# --- grouped and transposed convolutions ------------------------------------------------------


def test_grouped_conv_divides_fan_out_by_groups():
    """Conv2d(32, 64, 3, groups=4): weight (64, 8, 3, 3). Each output sees 8*9 = 72 inputs; each
    input feeds the 64/4 = 16 outputs of its group at 9 positions: 144 (torch says 576)."""
    shape = tuple(nn.Conv2d(32, 64, 3, groups=4).weight.shape)
    assert shape == (64, 8, 3, 3)
    assert wi.compute_fans(shape, "conv", groups=4) == wi.Fans(72, 144, 9)
    assert _torch_fans(shape) == (72, 576)  # torch does not divide by groups


@pytest.mark.parametrize(
    ("in_ch", "out_ch", "kernel", "groups"),
    [(6, 12, 3, 3), (16, 16, (3, 3), 16), (4, 8, (2, 3, 1), 2), (10, 5, 1, 5)],
    ids=["conv1d-g3", "depthwise2d", "conv3d-g2", "pointwise-g5"],
)
def test_grouped_conv_general(in_ch, out_ch, kernel, groups):
    dims = 1 if isinstance(kernel, int) else len(kernel)
    conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1](in_ch, out_ch, kernel, groups=groups)
    k = math.prod(conv.kernel_size)
    fans = wi.compute_fans(conv.weight, "conv", groups=groups)
    assert fans == wi.Fans(in_ch // groups * k, out_ch // groups * k, k)


def test_conv_transpose_swaps_torch():
    """ConvTranspose stores (in, out, *k); torch reads dim 1 as the input, so its fans are ours
    swapped."""
    conv = nn.ConvTranspose2d(8, 24, (3, 2))
    assert tuple(conv.weight.shape) == (8, 24, 3, 2)
    fans = wi.compute_fans(conv.weight, "conv_transpose")
    assert fans == wi.Fans(8 * 6, 24 * 6, 6)
    assert (fans.fan_out, fans.fan_in) == _calculate_fan_in_and_fan_out(conv.weight)


@pytest.mark.parametrize(
    ("in_ch", "out_ch", "kernel", "groups"),
    [(32, 64, 3, 4), (6, 9, (3, 3), 3), (4, 4, 5, 4), (8, 2, (1, 2, 3), 2)],
    ids=["1d-g4", "2d-g3", "1d-depthwise", "3d-g2"],
)
def test_grouped_conv_transpose(in_ch, out_ch, kernel, groups):
    """Weight (in, out/groups, *k): fan_in = in/groups * k, fan_out = out/groups * k."""
    dims = 1 if isinstance(kernel, int) else len(kernel)
    cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[dims - 1]
    conv = cls(in_ch, out_ch, kernel, groups=groups)
    k = math.prod(conv.kernel_size)
    assert tuple(conv.weight.shape) == (in_ch, out_ch // groups, *conv.kernel_size)
    fans = wi.compute_fans(conv.weight, "conv_transpose", groups=groups)
    assert fans == wi.Fans(in_ch // groups * k, out_ch // groups * k, k)


# --- embeddings, packed q/k/v, experts --------------------------------------------------------


def test_embedding_is_a_linear_map_from_one_hot():
    emb = nn.Embedding(1000, 64)
    assert wi.compute_fans(emb.weight, "embedding") == wi.Fans(1000, 64, 1)


def test_qkv_gives_fans_of_one_block():
    """(3d, in) packs three (d, in) projections: each has fan_in = in, fan_out = d."""
    attn = nn.MultiheadAttention(48, 4)
    assert tuple(attn.in_proj_weight.shape) == (144, 48)
    assert wi.compute_fans(attn.in_proj_weight, "qkv") == wi.Fans(48, 48, 1)
    assert wi.compute_fans((3 * 64, 128), "qkv") == wi.Fans(128, 64, 1)


def test_experts_gives_fans_of_one_expert():
    assert wi.compute_fans((8, 256, 128), "experts") == wi.Fans(128, 256, 1)
    assert wi.compute_fans((8, 256, 128), "experts") == wi.compute_fans((256, 128), "linear")


def test_zero_size_dims_are_allowed():
    assert wi.compute_fans((0, 5), "linear") == wi.Fans(5, 0, 1)


# --- Fans ------------------------------------------------------------------------------------


def test_fans_fields_and_fan_avg():
    fans = wi.Fans(3, 6)
    assert fans.receptive_field == 1
    assert fans.fan_avg == 4.5
    assert wi.compute_fans((64, 8, 3, 3), "conv", groups=4).fan_avg == (72 + 144) / 2
    fan_in, fan_out, rf = wi.compute_fans((5, 2, 3), "conv")
    assert (fan_in, fan_out, rf) == (6, 15, 3)


# --- errors ----------------------------------------------------------------------------------


def test_unknown_layout():
    with pytest.raises(wi.InitError, match=r"`layout` must be one of .*conv_transpose.*'dense'"):
        wi.compute_fans((4, 4), "dense")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    "shape",
    [(), (5,), torch.tensor(1.0), torch.zeros(5)],
    ids=["0d", "1d", "0d-tensor", "1d-tensor"],
)
def test_too_few_dims_points_to_explicit_fans(shape, layout):
    with pytest.raises(wi.InitError, match=r"fans="):
        wi.compute_fans(shape, layout)


@pytest.mark.parametrize(
    ("layout", "shape"), [("conv", (4, 3)), ("conv_transpose", (4, 3)), ("experts", (4, 3))]
)
def test_two_dims_are_too_few_for_conv_and_experts(layout, shape):
    with pytest.raises(wi.InitError, match=r"needs at least 3.*fans="):
        wi.compute_fans(shape, layout)


def test_linear_with_extra_dims():
    with pytest.raises(wi.InitError, match=r"is not \(out, in\)"):
        wi.compute_fans((4, 3, 2), "linear")


@pytest.mark.parametrize(
    ("shape", "layout", "groups", "pattern"),
    [
        ((64, 8, 3, 3), "conv", 5, r"`out_channels` \(=64\) must be divisible by `groups` \(=5\)"),
        ((30, 4, 3), "conv_transpose", 4, r"`in_channels` \(=30\) must be divisible by"),
    ],
)
def test_groups_not_dividing_channels(shape, layout, groups, pattern):
    with pytest.raises(wi.InitError, match=pattern):
        wi.compute_fans(shape, layout, groups=groups)


@pytest.mark.parametrize("layout", ["linear", "embedding", "qkv", "experts"])
def test_groups_only_for_conv_layouts(layout):
    with pytest.raises(wi.InitError, match=r"`groups` \(=2\) only applies to conv layouts"):
        wi.compute_fans((6, 6, 6), layout, groups=2)


@pytest.mark.parametrize("groups", [0, -1, 1.0, True, "2"])
def test_bad_groups(groups):
    with pytest.raises(wi.InitError, match=r"`groups` must be a positive int"):
        wi.compute_fans((4, 4, 3), "conv", groups=groups)


@pytest.mark.parametrize("shape", [(-1, 3), (4, -2, 3, 3), (4, 3.0), (4, True), "ab", 7, None])
def test_bad_shapes(shape):
    with pytest.raises(wi.InitError, match=r"`shape` must"):
        wi.compute_fans(shape, "linear")


def test_negative_dims_message_names_the_shape():
    with pytest.raises(wi.InitError, match=r"non-negative ints, got \(-1, 3\)"):
        wi.compute_fans((-1, 3))


@pytest.mark.parametrize("shape", [(100, 128), (4, 2)])
def test_qkv_not_divisible_by_three(shape):
    with pytest.raises(wi.InitError, match=r"divisible by 3"):
        wi.compute_fans(shape, "qkv")
