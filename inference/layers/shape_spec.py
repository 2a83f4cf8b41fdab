"""ShapeSpec: what a module needs to know about a feature map it consumes."""
from __future__ import annotations


class ShapeSpec:
    """Channels and stride of a feature map."""

    def __init__(self, channels: int | None = None, height: int | None = None, width: int | None = None, stride: int | None = None):
        self.channels, self.height, self.width, self.stride = channels, height, width, stride

    def __repr__(self) -> str:
        return f"ShapeSpec(channels={self.channels}, height={self.height}, width={self.width}, stride={self.stride})"
