"""ROI heads: standard (Mask R-CNN) and cascade."""
from .box_head import FastRCNNConvFCHead
from .cascade import CascadeROIHeads
from .fast_rcnn import FastRCNNOutputLayers, fast_rcnn_inference
from .mask_head import MaskRCNNConvUpsampleHead, mask_rcnn_inference, mask_rcnn_loss
from .standard import StandardROIHeads


def build_roi_heads(cfg, input_shape):
    name = cfg.MODEL.ROI_HEADS.NAME
    if name == "CascadeROIHeads":
        return CascadeROIHeads.from_config(cfg, input_shape)
    if name == "StandardROIHeads":
        return StandardROIHeads.from_config(cfg, input_shape)
    raise ValueError(f"MODEL.ROI_HEADS.NAME {name!r} not supported (StandardROIHeads, CascadeROIHeads)")


__all__ = ["FastRCNNConvFCHead", "CascadeROIHeads", "FastRCNNOutputLayers", "fast_rcnn_inference",
           "MaskRCNNConvUpsampleHead", "mask_rcnn_inference", "mask_rcnn_loss", "StandardROIHeads", "build_roi_heads"]
