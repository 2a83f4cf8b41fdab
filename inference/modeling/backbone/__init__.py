"""Backbones: ResNet and FPN (detectron2 names)."""
from .fpn import FPN, LastLevelMaxPool, build_backbone
from .resnet import BasicStem, BottleneckBlock, ResNet

__all__ = ["FPN", "LastLevelMaxPool", "build_backbone", "BasicStem", "BottleneckBlock", "ResNet"]
