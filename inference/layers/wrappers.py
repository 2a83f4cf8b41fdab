"""Wrappers of torch layers and functions with detectron2's behaviour: Conv2d with norm and activation
submodules (and the NNPACK path), cross_entropy that accepts empty inputs."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .nnpack import NNPACK_IN_CHANNELS, NNPACK_MIN_ELEMENTS, NNPACKConv2d, nnpack_available


class Conv2d(nn.Conv2d):
    """nn.Conv2d followed by an optional ``norm`` submodule and ``activation`` (detectron2 naming).

    ``use_nnpack`` (off by default; set by ``engine.execution.apply_execution_policy``): run through NNPACK
    on CPU when the convolution allows it (3x3, stride 1, no dilation or groups, float32) and is of a size
    where it is faster (``NNPACK_IN_CHANNELS``, ``NNPACK_MIN_ELEMENTS``)."""

    def __init__(self, *args, norm: nn.Module | None = None, activation: Callable | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation
        self.use_nnpack = False

    def nnpack_applies(self, x: torch.Tensor) -> bool:
        """Whether ``forward(x)`` runs through NNPACK."""
        return (self.use_nnpack and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
                and self.kernel_size == (3, 3) and self.stride == (1, 1) and self.dilation == (1, 1)
                and self.groups == 1 and self.padding_mode == "zeros" and self.padding == (1, 1)
                and NNPACK_IN_CHANNELS[0] <= x.shape[1] <= NNPACK_IN_CHANNELS[1]
                and x.numel() >= NNPACK_MIN_ELEMENTS
                and not torch.jit.is_scripting() and nnpack_available())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nnpack_applies(x):
            x = NNPACKConv2d.apply(x, self.weight, self.bias, self.padding[0])
        else:
            x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


def cross_entropy(input: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
    """cross_entropy that returns 0 (connected to the graph) for empty inputs, as detectron2."""
    if target.numel() == 0 and kwargs.get("reduction", "mean") == "mean":
        return input.sum() * 0.0
    return F.cross_entropy(input, target, **kwargs)
