"""DefaultAnchorGenerator: per-level cell anchors (sizes x aspect ratios) shifted over the feature grid."""
from __future__ import annotations

import math

import torch
from torch import nn


def _broadcast_params(params, num_features: int, name: str) -> list[list[float]]:
    if not isinstance(params[0], (list, tuple)):
        return [list(params)] * num_features
    if len(params) == 1:
        return [list(params[0])] * num_features
    if len(params) != num_features:
        raise ValueError(f"anchor {name} has {len(params)} levels but there are {num_features} feature maps")
    return [list(p) for p in params]


def generate_cell_anchors(sizes: list[float], aspect_ratios: list[float]) -> torch.Tensor:
    """Tensor[len(sizes) * len(aspect_ratios), 4] of anchors centred on (0, 0), sizes outer, ratios inner."""
    anchors = []
    for size in sizes:
        area = size**2.0
        for aspect_ratio in aspect_ratios:
            w = math.sqrt(area / aspect_ratio)
            h = aspect_ratio * w
            anchors.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(anchors)


class DefaultAnchorGenerator(nn.Module):
    """Anchors for each feature level (``strides``), offset ``offset`` * stride from the top-left corner."""

    box_dim = 4

    def __init__(self, *, sizes, aspect_ratios, strides: list[int], offset: float = 0.0):
        super().__init__()
        self.strides = list(strides)
        self.num_features = len(self.strides)
        sizes = _broadcast_params(sizes, self.num_features, "sizes")
        aspect_ratios = _broadcast_params(aspect_ratios, self.num_features, "aspect_ratios")
        self.cell_anchors = [generate_cell_anchors(s, a).float() for s, a in zip(sizes, aspect_ratios)]
        if not 0.0 <= offset < 1.0:
            raise ValueError(f"anchor offset must be in [0, 1), got {offset}")
        self.offset = offset
        self._cache: dict = {}

    @property
    def num_cell_anchors(self) -> list[int]:
        return [len(c) for c in self.cell_anchors]

    @property
    def num_anchors(self) -> list[int]:
        return self.num_cell_anchors

    def _grid_anchors(self, grid_sizes: list[tuple[int, int]], device: torch.device) -> list[torch.Tensor]:
        anchors = []
        for size, stride, base_anchors in zip(grid_sizes, self.strides, self.cell_anchors):
            base_anchors = base_anchors.to(device)
            grid_height, grid_width = size
            shifts_x = torch.arange(self.offset * stride, grid_width * stride, step=stride, dtype=torch.float32, device=device)
            shifts_y = torch.arange(self.offset * stride, grid_height * stride, step=stride, dtype=torch.float32, device=device)
            shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
            shift_x = shift_x.reshape(-1)
            shift_y = shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
            anchors.append((shifts.view(-1, 1, 4) + base_anchors.view(1, -1, 4)).reshape(-1, 4))
        return anchors

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per level Tensor[Hi * Wi * A, 4] (xyxy), ordered (y, x, anchor)."""
        grid_sizes = [tuple(int(s) for s in f.shape[-2:]) for f in features]
        device = features[0].device
        key = (tuple(grid_sizes), str(device))
        cached = self._cache.get(key)
        if cached is None:
            cached = self._grid_anchors(grid_sizes, device)
            if len(self._cache) > 16:
                self._cache.clear()
            self._cache[key] = cached
        return cached

    @classmethod
    def from_config(cls, cfg, strides: list[int]) -> DefaultAnchorGenerator:
        a = cfg.MODEL.ANCHOR_GENERATOR
        if a.NAME != "DefaultAnchorGenerator":
            raise ValueError(f"MODEL.ANCHOR_GENERATOR.NAME {a.NAME!r} not supported (DefaultAnchorGenerator)")
        return cls(sizes=a.SIZES, aspect_ratios=a.ASPECT_RATIOS, strides=strides, offset=a.OFFSET)
