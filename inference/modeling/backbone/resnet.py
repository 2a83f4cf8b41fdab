"""ResNet (bottleneck, depth 50/101/152) with detectron2's module names and options."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...layers import Conv2d, FrozenBatchNorm2d, ShapeSpec, c2_msra_fill, get_norm


class BasicStem(nn.Module):
    """7x7 stride-2 conv (``conv1``) + ReLU + 3x3 stride-2 max pool: stride 4."""

    def __init__(self, *, in_channels: int = 3, out_channels: int = 64, norm: str = "BN"):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = 4
        self.conv1 = Conv2d(in_channels, out_channels, kernel_size=7, stride=2, padding=3, bias=False,
                            norm=get_norm(norm, out_channels))
        c2_msra_fill(self.conv1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.conv1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)

    def freeze(self) -> BasicStem:
        for p in self.parameters():
            p.requires_grad = False
        FrozenBatchNorm2d.convert_frozen_batchnorm(self)
        return self


class BottleneckBlock(nn.Module):
    """1x1 -> 3x3 -> 1x1 bottleneck with a projection ``shortcut`` when channels change."""

    def __init__(self, *, in_channels: int, out_channels: int, bottleneck_channels: int, stride: int = 1,
                 num_groups: int = 1, norm: str = "BN", stride_in_1x1: bool = False, dilation: int = 1):
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        if in_channels != out_channels:
            self.shortcut = Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False,
                                   norm=get_norm(norm, out_channels))
        else:
            self.shortcut = None
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = Conv2d(in_channels, bottleneck_channels, kernel_size=1, stride=stride_1x1, bias=False,
                            norm=get_norm(norm, bottleneck_channels))
        self.conv2 = Conv2d(bottleneck_channels, bottleneck_channels, kernel_size=3, stride=stride_3x3,
                            padding=1 * dilation, bias=False, groups=num_groups, dilation=dilation,
                            norm=get_norm(norm, bottleneck_channels))
        self.conv3 = Conv2d(bottleneck_channels, out_channels, kernel_size=1, bias=False,
                            norm=get_norm(norm, out_channels))
        for layer in (self.conv1, self.conv2, self.conv3, self.shortcut):
            if layer is not None:
                c2_msra_fill(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        out += shortcut
        return F.relu_(out)

    def freeze(self) -> BottleneckBlock:
        for p in self.parameters():
            p.requires_grad = False
        FrozenBatchNorm2d.convert_frozen_batchnorm(self)
        return self


_DEPTH_BLOCKS = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}


class ResNet(nn.Module):
    """Stem + stages ``res2``..``res5``; returns a dict of the requested ``out_features``."""

    def __init__(self, *, stem: BasicStem, stages: list[list[nn.Module]], out_features: list[str], freeze_at: int = 0):
        super().__init__()
        self.stem = stem
        current_stride = stem.stride
        self._out_feature_strides = {"stem": current_stride}
        self._out_feature_channels = {"stem": stem.out_channels}
        self.stage_names: list[str] = []
        self.stages: list[nn.Module] = []
        for i, blocks in enumerate(stages):
            name = "res" + str(i + 2)
            stage = nn.Sequential(*blocks)
            self.add_module(name, stage)
            self.stage_names.append(name)
            self.stages.append(stage)
            for b in blocks:
                current_stride *= b.stride
            self._out_feature_strides[name] = current_stride
            self._out_feature_channels[name] = blocks[-1].out_channels
        self._out_features = list(out_features)
        self.freeze(freeze_at)

    def freeze(self, freeze_at: int = 0) -> ResNet:
        """Freeze the stem (``freeze_at >= 1``) and stages res2.. up to res{freeze_at}."""
        if freeze_at >= 1:
            self.stem.freeze()
        for idx, stage in enumerate(self.stages, start=2):
            if freeze_at >= idx:
                for block in stage.children():
                    block.freeze()
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = {}
        x = self.stem(x)
        if "stem" in self._out_features:
            outputs["stem"] = x
        for name, stage in zip(self.stage_names, self.stages):
            x = stage(x)
            if name in self._out_features:
                outputs[name] = x
        return outputs

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {n: ShapeSpec(channels=self._out_feature_channels[n], stride=self._out_feature_strides[n])
                for n in self._out_features}

    @classmethod
    def from_config(cls, cfg, input_channels: int = 3) -> ResNet:
        r = cfg.MODEL.RESNETS
        norm = r.NORM
        depth = r.DEPTH
        if depth not in _DEPTH_BLOCKS:
            raise ValueError(f"MODEL.RESNETS.DEPTH {depth} not supported (50, 101, 152)")
        if r.DEFORM_ON_PER_STAGE and any(r.DEFORM_ON_PER_STAGE):
            raise ValueError("deformable convolutions (MODEL.RESNETS.DEFORM_ON_PER_STAGE) are not supported")
        stem = BasicStem(in_channels=input_channels, out_channels=r.STEM_OUT_CHANNELS, norm=norm)
        out_features = list(r.OUT_FEATURES)
        num_groups, width_per_group = r.NUM_GROUPS, r.WIDTH_PER_GROUP
        bottleneck_channels = num_groups * width_per_group
        in_channels = r.STEM_OUT_CHANNELS
        out_channels = r.RES2_OUT_CHANNELS
        dilation = r.RES5_DILATION
        if dilation not in (1, 2):
            raise ValueError(f"MODEL.RESNETS.RES5_DILATION must be 1 or 2, got {dilation}")
        num_blocks = _DEPTH_BLOCKS[depth]
        max_stage = max({"res2": 2, "res3": 3, "res4": 4, "res5": 5}[f] for f in out_features if f != "stem")
        stages = []
        for idx, stage_idx in enumerate(range(2, max_stage + 1)):
            d = dilation if stage_idx == 5 else 1
            first_stride = 1 if idx == 0 or (stage_idx == 5 and d == 2) else 2
            blocks = []
            for i in range(num_blocks[idx]):
                blocks.append(BottleneckBlock(
                    in_channels=in_channels, out_channels=out_channels, bottleneck_channels=bottleneck_channels,
                    stride=first_stride if i == 0 else 1, num_groups=num_groups, norm=norm,
                    stride_in_1x1=r.STRIDE_IN_1X1, dilation=d))
                in_channels = out_channels
            stages.append(blocks)
            out_channels *= 2
            bottleneck_channels *= 2
        return cls(stem=stem, stages=stages, out_features=out_features, freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT)
