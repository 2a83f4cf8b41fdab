"""FastRCNNConvFCHead: ``conv{k}`` 3x3 convs then ``fc{k}`` linear layers (detectron2 names)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...layers import Conv2d, ShapeSpec, c2_msra_fill, c2_xavier_fill, get_norm


class FastRCNNConvFCHead(nn.Sequential):
    """Input Tensor[K, C, R, R] pooled features -> Tensor[K, fc_dim] (or conv features if no fc)."""

    def __init__(self, input_shape: ShapeSpec, *, conv_dims: list[int], fc_dims: list[int], conv_norm: str = ""):
        super().__init__()
        assert len(conv_dims) + len(fc_dims) > 0
        self._output_size = (input_shape.channels, input_shape.height, input_shape.width)
        self.conv_norm_relus = []
        for k, conv_dim in enumerate(conv_dims):
            conv = Conv2d(self._output_size[0], conv_dim, kernel_size=3, padding=1, bias=not conv_norm,
                          norm=get_norm(conv_norm, conv_dim), activation=nn.ReLU())
            self.add_module(f"conv{k + 1}", conv)
            self.conv_norm_relus.append(conv)
            self._output_size = (conv_dim, self._output_size[1], self._output_size[2])
        self.fcs = []
        for k, fc_dim in enumerate(fc_dims):
            if k == 0:
                self.add_module("flatten", nn.Flatten())
            fc = nn.Linear(int(np.prod(self._output_size)), fc_dim)
            self.add_module(f"fc{k + 1}", fc)
            self.add_module(f"fc_relu{k + 1}", nn.ReLU(inplace=True))
            self.fcs.append(fc)
            self._output_size = fc_dim
        for layer in self.conv_norm_relus:
            c2_msra_fill(layer)
        for layer in self.fcs:
            c2_xavier_fill(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x)
        return x

    @property
    def output_shape(self) -> ShapeSpec:
        o = self._output_size
        if isinstance(o, int):
            return ShapeSpec(channels=o)
        return ShapeSpec(channels=o[0], height=o[1], width=o[2])

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec) -> FastRCNNConvFCHead:
        b = cfg.MODEL.ROI_BOX_HEAD
        if b.NAME != "FastRCNNConvFCHead":
            raise ValueError(f"MODEL.ROI_BOX_HEAD.NAME {b.NAME!r} not supported (FastRCNNConvFCHead)")
        return cls(input_shape, conv_dims=[b.CONV_DIM] * b.NUM_CONV, fc_dims=[b.FC_DIM] * b.NUM_FC, conv_norm=b.NORM)
