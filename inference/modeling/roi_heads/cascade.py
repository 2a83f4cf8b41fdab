"""CascadeROIHeads: three box stages of rising IoU, class-agnostic refinement, mean stage scores."""
from __future__ import annotations

import torch
from torch import nn

from ...layers import ShapeSpec
from ...structures import Boxes, Instances, pairwise_iou
from ..box_regression import Box2BoxTransform
from ..matcher import Matcher
from .box_head import FastRCNNConvFCHead
from .fast_rcnn import FastRCNNOutputLayers, fast_rcnn_inference
from .standard import StandardROIHeads, _pooler_from_config


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, scale):
        ctx.scale = scale
        return input

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * ctx.scale, None


class CascadeROIHeads(StandardROIHeads):
    """``box_head``, ``box_predictor`` and ``proposal_matchers`` are per-stage lists of equal length."""

    def __init__(self, *, box_heads: list[nn.Module], box_predictors: list[nn.Module],
                 proposal_matchers: list[Matcher], **kwargs):
        assert "proposal_matcher" not in kwargs, "CascadeROIHeads takes proposal_matchers (one per stage)"
        kwargs["proposal_matcher"] = proposal_matchers[0]
        num_stages = len(box_heads)
        assert len(box_predictors) == num_stages == len(proposal_matchers)
        super().__init__(box_head=nn.ModuleList(box_heads), box_predictor=nn.ModuleList(box_predictors), **kwargs)
        self.num_cascade_stages = num_stages
        self.proposal_matchers = proposal_matchers

    @classmethod
    def from_config(cls, cfg, input_shape: dict[str, ShapeSpec]) -> CascadeROIHeads:
        in_features = list(cfg.MODEL.ROI_HEADS.IN_FEATURES)
        b = cfg.MODEL.ROI_BOX_HEAD
        ious = list(cfg.MODEL.ROI_BOX_CASCADE_HEAD.IOUS)
        weights = list(cfg.MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS)
        if len(ious) != len(weights):
            raise ValueError("MODEL.ROI_BOX_CASCADE_HEAD.IOUS and BBOX_REG_WEIGHTS need the same length")
        if not b.CLS_AGNOSTIC_BBOX_REG:
            raise ValueError("CascadeROIHeads needs MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG: true")
        if cfg.MODEL.ROI_HEADS.IOU_THRESHOLDS[0] != ious[0]:
            raise ValueError("MODEL.ROI_HEADS.IOU_THRESHOLDS[0] must equal MODEL.ROI_BOX_CASCADE_HEAD.IOUS[0]")
        channels = input_shape[in_features[0]].channels
        pooled = ShapeSpec(channels=channels, height=b.POOLER_RESOLUTION, width=b.POOLER_RESOLUTION)
        box_heads, box_predictors, matchers = [], [], []
        for iou, w in zip(ious, weights):
            head = FastRCNNConvFCHead.from_config(cfg, pooled)
            box_heads.append(head)
            box_predictors.append(FastRCNNOutputLayers.from_config(cfg, head.output_shape, Box2BoxTransform(weights=w)))
            matchers.append(Matcher([iou], [0, 1], allow_low_quality_matches=False))
        kwargs = cls._common_kwargs(cfg)
        kwargs.pop("proposal_matcher")
        return cls(box_in_features=in_features, box_pooler=_pooler_from_config(cfg, input_shape, in_features, b),
                   box_heads=box_heads, box_predictors=box_predictors, proposal_matchers=matchers,
                   **kwargs, **cls._mask_kwargs(cfg, input_shape))

    def forward(self, images, features, proposals: list[Instances], targets: list[Instances] | None = None):
        if self.training:
            if targets is None:
                raise ValueError("ROI heads training needs targets")
            proposals = self.label_and_sample_proposals(proposals, targets)
            losses = self._forward_box(features, proposals, targets)
            losses.update(self._forward_mask(features, proposals))
            return proposals, losses
        features = self._in_pooler_layout(features)
        pred_instances = self._forward_box(features, proposals)
        pred_instances = self.forward_with_given_boxes(features, pred_instances)
        return pred_instances, {}

    def _forward_box(self, features, proposals: list[Instances], targets: list[Instances] | None = None):
        features = [features[f] for f in self.box_in_features]
        head_outputs = []
        prev_pred_boxes = None
        image_sizes = [x.image_size for x in proposals]
        for k in range(self.num_cascade_stages):
            if k > 0:
                proposals = self._create_proposals_from_boxes(prev_pred_boxes, image_sizes)
                if self.training:
                    proposals = self._match_and_label_boxes(proposals, k, targets)
            predictions = self._run_stage(features, proposals, k)
            prev_pred_boxes = self.box_predictor[k].predict_boxes(predictions, proposals)
            head_outputs.append((self.box_predictor[k], predictions, proposals))
        if self.training:
            losses = {}
            for stage, (predictor, predictions, props) in enumerate(head_outputs):
                stage_losses = predictor.losses(predictions, props)
                losses.update({f"{name}_stage{stage}": v for name, v in stage_losses.items()})
            return losses
        scores_per_stage = [h[0].predict_probs(h[1], h[2]) for h in head_outputs]
        scores = [sum(list(s)) * (1.0 / self.num_cascade_stages) for s in zip(*scores_per_stage)]
        predictor, predictions, props = head_outputs[-1]
        boxes = predictor.predict_boxes(predictions, props)
        pred_instances, _ = fast_rcnn_inference(boxes, scores, image_sizes, predictor.test_score_thresh,
                                                predictor.test_nms_thresh, predictor.test_topk_per_image)
        return pred_instances

    @torch.no_grad()
    def _match_and_label_boxes(self, proposals: list[Instances], stage: int, targets: list[Instances]) -> list[Instances]:
        for proposals_per_image, targets_per_image in zip(proposals, targets):
            match_quality_matrix = pairwise_iou(targets_per_image.gt_boxes, proposals_per_image.proposal_boxes)
            matched_idxs, proposal_labels = self.proposal_matchers[stage](match_quality_matrix)
            if len(targets_per_image) > 0:
                gt_classes = targets_per_image.gt_classes[matched_idxs]
                gt_classes[proposal_labels == 0] = self.num_classes
                gt_boxes = targets_per_image.gt_boxes[matched_idxs]
            else:
                gt_classes = torch.zeros_like(matched_idxs) + self.num_classes
                gt_boxes = Boxes(targets_per_image.gt_boxes.tensor.new_zeros((len(proposals_per_image), 4)))
            proposals_per_image.gt_classes = gt_classes
            proposals_per_image.gt_boxes = gt_boxes
        return proposals

    def _run_stage(self, features, proposals: list[Instances], stage: int):
        box_features = self.box_pooler(features, [x.proposal_boxes for x in proposals])
        if self.training:
            box_features = _ScaleGradient.apply(box_features, 1.0 / self.num_cascade_stages)
        box_features = self.box_head[stage](box_features)
        return self.box_predictor[stage](box_features)

    def _create_proposals_from_boxes(self, boxes: list[torch.Tensor], image_sizes) -> list[Instances]:
        proposals = []
        for boxes_per_image, image_size in zip(boxes, image_sizes):
            b = Boxes(boxes_per_image.detach())
            b.clip(image_size)
            if self.training:
                b = b[b.nonempty()]
            prop = Instances(image_size)
            prop.proposal_boxes = b
            proposals.append(prop)
        return proposals
