"""MaskRCNNConvUpsampleHead (``mask_fcn{k}``, ``deconv``, ``predictor``), its loss and inference."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...layers import Conv2d, ShapeSpec, c2_msra_fill, get_norm
from ...structures import Instances


def mask_rcnn_loss(pred_mask_logits: torch.Tensor, instances: list[Instances]) -> torch.Tensor:
    """Mean BCE between Tensor[K, C, M, M] logits (at gt class) and gt masks cropped to the proposals."""
    cls_agnostic_mask = pred_mask_logits.size(1) == 1
    total_num_masks = pred_mask_logits.size(0)
    mask_side_len = pred_mask_logits.size(2)
    assert pred_mask_logits.size(2) == pred_mask_logits.size(3), "Mask prediction must be square!"
    gt_classes, gt_masks = [], []
    for inst in instances:
        if len(inst) == 0:
            continue
        if not cls_agnostic_mask:
            gt_classes.append(inst.gt_classes.to(dtype=torch.int64))
        gt_masks.append(inst.gt_masks.crop_and_resize(inst.proposal_boxes.tensor, mask_side_len).to(pred_mask_logits.device))
    if len(gt_masks) == 0:
        return pred_mask_logits.sum() * 0
    gt_masks = torch.cat(gt_masks, dim=0)
    if cls_agnostic_mask:
        pred_mask_logits = pred_mask_logits[:, 0]
    else:
        indices = torch.arange(total_num_masks, device=pred_mask_logits.device)
        pred_mask_logits = pred_mask_logits[indices, torch.cat(gt_classes, dim=0)]
    return F.binary_cross_entropy_with_logits(pred_mask_logits, gt_masks.to(torch.float32), reduction="mean")


def mask_rcnn_inference(pred_mask_logits: torch.Tensor, pred_instances: list[Instances]) -> None:
    """Set ``pred_masks`` = sigmoid of the predicted class's logits, Tensor[Ni, 1, M, M], on each image."""
    cls_agnostic_mask = pred_mask_logits.size(1) == 1
    if cls_agnostic_mask:
        mask_probs_pred = pred_mask_logits.sigmoid()
    else:
        num_masks = pred_mask_logits.shape[0]
        class_pred = torch.cat([i.pred_classes for i in pred_instances])
        indices = torch.arange(num_masks, device=class_pred.device)
        mask_probs_pred = pred_mask_logits[indices, class_pred][:, None].sigmoid()
    num_boxes_per_image = [len(i) for i in pred_instances]
    for prob, instances in zip(mask_probs_pred.split(num_boxes_per_image, dim=0), pred_instances):
        instances.pred_masks = prob


class Deconv2x2ReLU(torch.autograd.Function):
    """``relu(conv_transpose2d(x, weight, bias, stride=2))`` for a 2x2 kernel (the mask head's ``deconv``
    and its ReLU) with the backward written as two matrix products: the 2x2 windows do not overlap, so
    every input pixel owns one 2x2 output block. The ReLU mask is applied while the gradient is laid
    out in blocks (one pass). On CPU this backward is ~2x faster than oneDNN's plus a separate ReLU's."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        y = F.relu_(F.conv_transpose2d(x, weight, bias, stride=2))
        ctx.save_for_backward(x, weight, y)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        x, weight, y = ctx.saved_tensors
        n, c_in, h, w = x.shape
        c_out = weight.shape[1]
        # output pixel (2i + a, 2j + b) of channel o -> row (n, i, j), column (a, b, o)
        blocks = grad_output.new_empty((n, h, w, 2, 2, c_out))
        as_output = blocks.permute(0, 1, 3, 2, 4, 5)  # (n, i, a, j, b, o): the output's pixel order

        def in_blocks(t: torch.Tensor) -> torch.Tensor:
            return t.permute(0, 2, 3, 1).reshape(n, h, 2, w, 2, c_out)  # a view for channels_last tensors

        torch.ops.aten.threshold_backward.grad_input(in_blocks(grad_output), in_blocks(y), 0.0, grad_input=as_output)
        grad_blocks = blocks.view(n * h * w, 4 * c_out)
        weight_matrix = weight.permute(0, 2, 3, 1).reshape(c_in, 4 * c_out)  # (c_in; a, b, o)
        rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c_in)  # a view when x is channels_last
        grad_input = (grad_blocks @ weight_matrix.t()).view(n, h, w, c_in).permute(0, 3, 1, 2)
        grad_weight = (rows.t() @ grad_blocks).view(c_in, 2, 2, c_out).permute(0, 3, 1, 2)
        grad_bias = grad_blocks.view(-1, 4, c_out).sum(dim=(0, 1)) if ctx.has_bias else None
        return grad_input, grad_weight, grad_bias


class MaskRCNNConvUpsampleHead(nn.Module):
    """``num_conv`` 3x3 convs, a 2x2 stride-2 ``deconv``, a 1x1 ``predictor`` to one mask per class."""

    def __init__(self, input_shape: ShapeSpec, *, num_classes: int, conv_dims: list[int], conv_norm: str = "",
                 loss_weight: float = 1.0):
        super().__init__()
        assert len(conv_dims) >= 1, "conv_dims have to be non-empty!"
        self.loss_weight = loss_weight
        self.conv_norm_relus = []
        cur_channels = input_shape.channels
        for k, conv_dim in enumerate(conv_dims[:-1]):
            conv = Conv2d(cur_channels, conv_dim, kernel_size=3, stride=1, padding=1, bias=not conv_norm,
                          norm=get_norm(conv_norm, conv_dim), activation=nn.ReLU(inplace=True))
            self.add_module(f"mask_fcn{k + 1}", conv)
            self.conv_norm_relus.append(conv)
            cur_channels = conv_dim
        self.deconv = nn.ConvTranspose2d(cur_channels, conv_dims[-1], kernel_size=2, stride=2, padding=0)
        self.add_module("deconv_relu", nn.ReLU())
        cur_channels = conv_dims[-1]
        self.predictor = nn.Conv2d(cur_channels, num_classes, kernel_size=1, stride=1, padding=0)
        for layer in self.conv_norm_relus + [self.deconv]:
            c2_msra_fill(layer)
        nn.init.normal_(self.predictor.weight, std=0.001)
        if self.predictor.bias is not None:
            nn.init.constant_(self.predictor.bias, 0)

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        """Mask logits Tensor[R, num_classes, 2S, 2S] of pooled features Tensor[R, C, S, S]. The memory format
        follows the weights' (``inference.engine.execution``: channels_last weights give channels_last
        outputs, which oneDNN's deconvolution runs ~2x faster); NNPACK's convolutions read NCHW."""
        for layer in self.conv_norm_relus:
            x = layer(x)
        if x.device.type == "cpu" and torch.is_grad_enabled():  # CPU training: the faster backward
            x = Deconv2x2ReLU.apply(x, self.deconv.weight, self.deconv.bias)
        else:
            x = F.relu_(self.deconv(x))
        return self.predictor(x)

    def forward(self, x: torch.Tensor, instances: list[Instances]):
        """Training: {"loss_mask": ...}; inference: sets ``pred_masks`` on ``instances`` and returns them."""
        x = self.layers(x)
        if self.training:
            return {"loss_mask": mask_rcnn_loss(x, instances) * self.loss_weight}
        mask_rcnn_inference(x, instances)
        return instances

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec) -> MaskRCNNConvUpsampleHead:
        m = cfg.MODEL.ROI_MASK_HEAD
        if m.NAME != "MaskRCNNConvUpsampleHead":
            raise ValueError(f"MODEL.ROI_MASK_HEAD.NAME {m.NAME!r} not supported (MaskRCNNConvUpsampleHead)")
        num_classes = 1 if m.CLS_AGNOSTIC_MASK else cfg.MODEL.ROI_HEADS.NUM_CLASSES
        return cls(input_shape, num_classes=num_classes, conv_dims=[m.CONV_DIM] * (m.NUM_CONV + 1), conv_norm=m.NORM)
