"""FastRCNNOutputLayers (``cls_score``, ``bbox_pred``): losses and detectron2's ``fast_rcnn_inference``."""
from __future__ import annotations

import torch
from torch import nn

from ...layers import ShapeSpec, batched_nms, cross_entropy, smooth_l1_loss
from ...structures import Boxes, Instances
from ..box_regression import Box2BoxTransform


def fast_rcnn_inference(boxes: list[torch.Tensor], scores: list[torch.Tensor], image_shapes: list[tuple[int, int]],
                        score_thresh: float, nms_thresh: float, topk_per_image: int
                        ) -> tuple[list[Instances], list[torch.Tensor]]:
    """Per image: threshold scores, per-class NMS, keep the top ``topk_per_image``.

    ``boxes``: per image Tensor[R, K*4] (or [R, 4] class-agnostic); ``scores``: Tensor[R, K+1].
    Returns Instances with ``pred_boxes`` (Boxes), ``scores`` (float[N]), ``pred_classes`` (int64[N]),
    and the kept proposal indices.
    """
    result = [fast_rcnn_inference_single_image(b, s, shape, score_thresh, nms_thresh, topk_per_image)
              for s, b, shape in zip(scores, boxes, image_shapes)]
    return [x[0] for x in result], [x[1] for x in result]


def fast_rcnn_inference_single_image(boxes, scores, image_shape, score_thresh, nms_thresh, topk_per_image):
    valid_mask = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
    if not valid_mask.all():
        boxes = boxes[valid_mask]
        scores = scores[valid_mask]
    scores = scores[:, :-1]
    num_bbox_reg_classes = boxes.shape[1] // 4
    boxes = Boxes(boxes.reshape(-1, 4))
    boxes.clip(image_shape)
    boxes = boxes.tensor.view(-1, num_bbox_reg_classes, 4)
    filter_mask = scores > score_thresh
    filter_inds = filter_mask.nonzero()
    if num_bbox_reg_classes == 1:
        boxes = boxes[filter_inds[:, 0], 0]
    else:
        boxes = boxes[filter_mask]
    scores = scores[filter_mask]
    keep = batched_nms(boxes, scores, filter_inds[:, 1], nms_thresh)
    if topk_per_image >= 0:
        keep = keep[:topk_per_image]
    boxes, scores, filter_inds = boxes[keep], scores[keep], filter_inds[keep]
    result = Instances(image_shape)
    result.pred_boxes = Boxes(boxes)
    result.scores = scores
    result.pred_classes = filter_inds[:, 1]
    return result, filter_inds[:, 0]


class FastRCNNOutputLayers(nn.Module):
    """Linear ``cls_score`` (K + 1 logits) and ``bbox_pred`` (K*4 or 4 deltas when class-agnostic)."""

    def __init__(self, input_shape: ShapeSpec, *, box2box_transform: Box2BoxTransform, num_classes: int,
                 test_score_thresh: float = 0.0, test_nms_thresh: float = 0.5, test_topk_per_image: int = 100,
                 cls_agnostic_bbox_reg: bool = False, smooth_l1_beta: float = 0.0, box_reg_loss_type: str = "smooth_l1",
                 loss_weight: float | dict[str, float] = 1.0):
        super().__init__()
        if isinstance(input_shape, int):
            input_shape = ShapeSpec(channels=input_shape)
        self.num_classes = num_classes
        input_size = input_shape.channels * (input_shape.width or 1) * (input_shape.height or 1)
        self.cls_score = nn.Linear(input_size, num_classes + 1)
        num_bbox_reg_classes = 1 if cls_agnostic_bbox_reg else num_classes
        box_dim = len(box2box_transform.weights)
        self.bbox_pred = nn.Linear(input_size, num_bbox_reg_classes * box_dim)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        for layer in (self.cls_score, self.bbox_pred):
            nn.init.constant_(layer.bias, 0)
        self.box2box_transform = box2box_transform
        self.smooth_l1_beta = smooth_l1_beta
        self.test_score_thresh = test_score_thresh
        self.test_nms_thresh = test_nms_thresh
        self.test_topk_per_image = test_topk_per_image
        if box_reg_loss_type != "smooth_l1":
            raise ValueError(f"box loss {box_reg_loss_type!r} not supported (smooth_l1)")
        if isinstance(loss_weight, float):
            loss_weight = {"loss_cls": loss_weight, "loss_box_reg": loss_weight}
        self.loss_weight = loss_weight

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec, box2box_transform: Box2BoxTransform | None = None
                    ) -> FastRCNNOutputLayers:
        b = cfg.MODEL.ROI_BOX_HEAD
        if b.USE_FED_LOSS or b.USE_SIGMOID_CE:
            raise ValueError("MODEL.ROI_BOX_HEAD.USE_FED_LOSS / USE_SIGMOID_CE are not supported")
        return cls(input_shape,
                   box2box_transform=box2box_transform or Box2BoxTransform(weights=b.BBOX_REG_WEIGHTS),
                   num_classes=cfg.MODEL.ROI_HEADS.NUM_CLASSES, cls_agnostic_bbox_reg=b.CLS_AGNOSTIC_BBOX_REG,
                   smooth_l1_beta=b.SMOOTH_L1_BETA, test_score_thresh=cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST,
                   test_nms_thresh=cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST,
                   test_topk_per_image=cfg.TEST.DETECTIONS_PER_IMAGE, box_reg_loss_type=b.BBOX_REG_LOSS_TYPE,
                   loss_weight={"loss_box_reg": b.BBOX_REG_LOSS_WEIGHT})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tensor[R, D] (or [R, C, H, W]) -> (scores Tensor[R, K+1], deltas Tensor[R, K*4 or 4])."""
        if x.dim() > 2:
            x = torch.flatten(x, start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)

    def losses(self, predictions, proposals: list[Instances]) -> dict[str, torch.Tensor]:
        scores, proposal_deltas = predictions
        gt_classes = torch.cat([p.gt_classes for p in proposals], dim=0) if proposals else torch.empty(0)
        proposal_boxes = torch.cat([p.proposal_boxes.tensor for p in proposals], dim=0)
        gt_boxes = torch.cat([(p.gt_boxes if p.has("gt_boxes") else p.proposal_boxes).tensor for p in proposals], dim=0)
        losses = {
            "loss_cls": cross_entropy(scores, gt_classes, reduction="mean"),
            "loss_box_reg": self.box_reg_loss(proposal_boxes, gt_boxes, proposal_deltas, gt_classes),
        }
        return {k: v * self.loss_weight.get(k, 1.0) for k, v in losses.items()}

    def box_reg_loss(self, proposal_boxes, gt_boxes, pred_deltas, gt_classes) -> torch.Tensor:
        box_dim = proposal_boxes.shape[1]
        fg_inds = torch.nonzero((gt_classes >= 0) & (gt_classes < self.num_classes), as_tuple=True)[0]
        if pred_deltas.shape[1] == box_dim:
            fg_pred_deltas = pred_deltas[fg_inds]
        else:
            fg_pred_deltas = pred_deltas.view(-1, self.num_classes, box_dim)[fg_inds, gt_classes[fg_inds]]
        gt_pred_deltas = self.box2box_transform.get_deltas(proposal_boxes[fg_inds], gt_boxes[fg_inds])
        loss_box_reg = smooth_l1_loss(fg_pred_deltas, gt_pred_deltas, self.smooth_l1_beta, reduction="sum")
        return loss_box_reg / max(gt_classes.numel(), 1.0)

    def inference(self, predictions, proposals: list[Instances]) -> tuple[list[Instances], list[torch.Tensor]]:
        boxes = self.predict_boxes(predictions, proposals)
        scores = self.predict_probs(predictions, proposals)
        image_shapes = [x.image_size for x in proposals]
        return fast_rcnn_inference(boxes, scores, image_shapes, self.test_score_thresh, self.test_nms_thresh,
                                   self.test_topk_per_image)

    def predict_boxes(self, predictions, proposals: list[Instances]) -> list[torch.Tensor]:
        """Per image Tensor[Ri, K*4] (or [Ri, 4]) decoded boxes."""
        if not len(proposals):
            return []
        _, proposal_deltas = predictions
        num_prop_per_image = [len(p) for p in proposals]
        proposal_boxes = torch.cat([p.proposal_boxes.tensor for p in proposals], dim=0)
        predict_boxes = self.box2box_transform.apply_deltas(proposal_deltas, proposal_boxes)
        return list(predict_boxes.split(num_prop_per_image))

    def predict_probs(self, predictions, proposals: list[Instances]) -> list[torch.Tensor]:
        """Per image Tensor[Ri, K+1] softmax probabilities."""
        scores, _ = predictions
        num_inst_per_image = [len(p) for p in proposals]
        probs = torch.softmax(scores, dim=-1)
        return list(probs.split(num_inst_per_image, dim=0))
