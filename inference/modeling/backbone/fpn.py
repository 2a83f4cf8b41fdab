"""Feature Pyramid Network over a bottom-up backbone, with detectron2's names (fpn_lateral{s}, fpn_output{s})."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...layers import Conv2d, ShapeSpec, c2_xavier_fill, get_norm
from .resnet import ResNet


def _log2_int(x: float) -> int:
    return int(round(math.log2(x)))


class LastLevelMaxPool(nn.Module):
    """p6 = max_pool(p5, kernel 1, stride 2)."""

    num_levels = 1
    in_feature = "p5"

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [F.max_pool2d(x, kernel_size=1, stride=2, padding=0)]


class FPN(nn.Module):
    """Top-down pyramid ``p{stage}`` from ``in_features`` of ``bottom_up`` (+ p6 from ``top_block``)."""

    def __init__(self, *, bottom_up: nn.Module, in_features: list[str], out_channels: int, norm: str = "",
                 top_block: nn.Module | None = None, fuse_type: str = "sum"):
        super().__init__()
        input_shapes = bottom_up.output_shape()
        strides = [input_shapes[f].stride for f in in_features]
        in_channels_per_feature = [input_shapes[f].channels for f in in_features]
        lateral_convs, output_convs = [], []
        use_bias = norm == ""
        for idx, in_channels in enumerate(in_channels_per_feature):
            lateral_conv = Conv2d(in_channels, out_channels, kernel_size=1, bias=use_bias, norm=get_norm(norm, out_channels))
            output_conv = Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=use_bias,
                                 norm=get_norm(norm, out_channels))
            c2_xavier_fill(lateral_conv)
            c2_xavier_fill(output_conv)
            stage = _log2_int(strides[idx])
            self.add_module(f"fpn_lateral{stage}", lateral_conv)
            self.add_module(f"fpn_output{stage}", output_conv)
            lateral_convs.append(lateral_conv)
            output_convs.append(output_conv)
        # top-down order
        self.lateral_convs = lateral_convs[::-1]
        self.output_convs = output_convs[::-1]
        self.top_block = top_block
        self.in_features = tuple(in_features)
        self.bottom_up = bottom_up
        self._out_feature_strides = {f"p{_log2_int(s)}": s for s in strides}
        if top_block is not None:
            last = _log2_int(strides[-1])
            for s in range(last, last + top_block.num_levels):
                self._out_feature_strides[f"p{s + 1}"] = 2 ** (s + 1)
        self._out_features = list(self._out_feature_strides.keys())
        self._out_feature_channels = {k: out_channels for k in self._out_features}
        self._size_divisibility = strides[-1]
        if fuse_type not in ("avg", "sum"):
            raise ValueError(f"MODEL.FPN.FUSE_TYPE must be sum or avg, got {fuse_type!r}")
        self._fuse_type = fuse_type

    @property
    def size_divisibility(self) -> int:
        return self._size_divisibility

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        bottom_up_features = self.bottom_up(x)
        results = []
        prev = self.lateral_convs[0](bottom_up_features[self.in_features[-1]])
        results.append(self.output_convs[0](prev))
        for idx, (lateral_conv, output_conv) in enumerate(zip(self.lateral_convs, self.output_convs)):
            if idx > 0:
                features = bottom_up_features[self.in_features[-idx - 1]]
                top_down = F.interpolate(prev, scale_factor=2.0, mode="nearest")
                prev = lateral_conv(features) + top_down
                if self._fuse_type == "avg":
                    prev /= 2
                results.insert(0, output_conv(prev))
        if self.top_block is not None:
            top_in = results[self._out_features.index(self.top_block.in_feature)]
            results.extend(self.top_block(top_in))
        return {f: r for f, r in zip(self._out_features, results)}

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {n: ShapeSpec(channels=self._out_feature_channels[n], stride=self._out_feature_strides[n])
                for n in self._out_features}

    @classmethod
    def from_config(cls, cfg, input_channels: int = 3) -> FPN:
        bottom_up = ResNet.from_config(cfg, input_channels)
        return cls(bottom_up=bottom_up, in_features=list(cfg.MODEL.FPN.IN_FEATURES), out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
                   norm=cfg.MODEL.FPN.NORM, top_block=LastLevelMaxPool(), fuse_type=cfg.MODEL.FPN.FUSE_TYPE)


def build_backbone(cfg, input_channels: int | None = None) -> nn.Module:
    """``MODEL.BACKBONE.NAME``: build_resnet_fpn_backbone or build_resnet_backbone."""
    if input_channels is None:
        input_channels = len(cfg.MODEL.PIXEL_MEAN)
    name = cfg.MODEL.BACKBONE.NAME
    if name == "build_resnet_fpn_backbone":
        return FPN.from_config(cfg, input_channels)
    if name == "build_resnet_backbone":
        return ResNet.from_config(cfg, input_channels)
    raise ValueError(f"MODEL.BACKBONE.NAME {name!r} not supported (build_resnet_fpn_backbone, build_resnet_backbone)")
