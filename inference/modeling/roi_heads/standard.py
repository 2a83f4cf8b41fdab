"""StandardROIHeads (Mask R-CNN): proposal sampling, box head + predictor, mask head."""
from __future__ import annotations

import math

import torch
from torch import nn

from ...layers import ShapeSpec
from ...structures import BitMasks, Boxes, IndexedBitMasks, Instances, pairwise_iou
from ..matcher import Matcher
from ..poolers import ROIPooler
from ..sampling import subsample_labels
from .box_head import FastRCNNConvFCHead
from .fast_rcnn import FastRCNNOutputLayers
from .mask_head import MaskRCNNConvUpsampleHead


def add_ground_truth_to_proposals(targets: list[Instances], proposals: list[Instances]) -> list[Instances]:
    """Append each image's gt boxes to its proposals (objectness logit ~ +23, i.e. probability 1)."""
    out = []
    for gt, props in zip(targets, proposals):
        device = props.objectness_logits.device
        gt_logit_value = math.log((1.0 - 1e-10) / (1 - (1.0 - 1e-10)))
        gt_logits = gt_logit_value * torch.ones(len(gt.gt_boxes), device=device)
        gt_proposal = Instances(props.image_size)
        gt_proposal.proposal_boxes = Boxes(gt.gt_boxes.tensor.to(device))
        gt_proposal.objectness_logits = gt_logits
        out.append(Instances.cat([props, gt_proposal]))
    return out


def select_foreground_proposals(proposals: list[Instances], bg_label: int) -> list[Instances]:
    out = []
    for p in proposals:
        gt_classes = p.gt_classes
        fg = (gt_classes != -1) & (gt_classes != bg_label)
        out.append(p[torch.nonzero(fg, as_tuple=True)[0]])
    return out


def _pooler_from_config(cfg, input_shape: dict[str, ShapeSpec], in_features: list[str], head_cfg) -> ROIPooler:
    return ROIPooler(output_size=head_cfg.POOLER_RESOLUTION,
                     scales=[1.0 / input_shape[k].stride for k in in_features],
                     sampling_ratio=head_cfg.POOLER_SAMPLING_RATIO, pooler_type=head_cfg.POOLER_TYPE)


class StandardROIHeads(nn.Module):
    """Box branch (pooler -> head -> predictor) and optional mask branch, as detectron2's StandardROIHeads."""

    def __init__(self, *, num_classes: int, batch_size_per_image: int, positive_fraction: float,
                 proposal_matcher: Matcher, box_in_features: list[str], box_pooler: ROIPooler, box_head: nn.Module,
                 box_predictor: nn.Module, mask_in_features: list[str] | None = None,
                 mask_pooler: ROIPooler | None = None, mask_head: nn.Module | None = None,
                 proposal_append_gt: bool = True):
        super().__init__()
        self.num_classes = num_classes
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.proposal_matcher = proposal_matcher
        self.proposal_append_gt = proposal_append_gt
        self.box_in_features = list(box_in_features)
        self.box_pooler = box_pooler
        self.box_head = box_head
        self.box_predictor = box_predictor
        self.mask_on = mask_head is not None
        if self.mask_on:
            self.mask_in_features = list(mask_in_features)
            self.mask_pooler = mask_pooler
            self.mask_head = mask_head

    # config ----------------------------------------------------------------------------------
    @staticmethod
    def _common_kwargs(cfg) -> dict:
        h = cfg.MODEL.ROI_HEADS
        return dict(num_classes=h.NUM_CLASSES, batch_size_per_image=h.BATCH_SIZE_PER_IMAGE,
                    positive_fraction=h.POSITIVE_FRACTION, proposal_append_gt=h.PROPOSAL_APPEND_GT,
                    proposal_matcher=Matcher(h.IOU_THRESHOLDS, h.IOU_LABELS, allow_low_quality_matches=False))

    @staticmethod
    def _mask_kwargs(cfg, input_shape: dict[str, ShapeSpec]) -> dict:
        if not cfg.MODEL.MASK_ON:
            return {}
        in_features = list(cfg.MODEL.ROI_HEADS.IN_FEATURES)
        m = cfg.MODEL.ROI_MASK_HEAD
        channels = input_shape[in_features[0]].channels
        shape = ShapeSpec(channels=channels, width=m.POOLER_RESOLUTION, height=m.POOLER_RESOLUTION)
        return dict(mask_in_features=in_features, mask_pooler=_pooler_from_config(cfg, input_shape, in_features, m),
                    mask_head=MaskRCNNConvUpsampleHead.from_config(cfg, shape))

    @classmethod
    def from_config(cls, cfg, input_shape: dict[str, ShapeSpec]) -> StandardROIHeads:
        in_features = list(cfg.MODEL.ROI_HEADS.IN_FEATURES)
        b = cfg.MODEL.ROI_BOX_HEAD
        channels = input_shape[in_features[0]].channels
        box_head = FastRCNNConvFCHead.from_config(
            cfg, ShapeSpec(channels=channels, height=b.POOLER_RESOLUTION, width=b.POOLER_RESOLUTION))
        box_predictor = FastRCNNOutputLayers.from_config(cfg, box_head.output_shape)
        return cls(box_in_features=in_features, box_pooler=_pooler_from_config(cfg, input_shape, in_features, b),
                   box_head=box_head, box_predictor=box_predictor, **cls._common_kwargs(cfg),
                   **cls._mask_kwargs(cfg, input_shape))

    # training --------------------------------------------------------------------------------
    def _sample_proposals(self, matched_idxs, matched_labels, gt_classes):
        has_gt = gt_classes.numel() > 0
        if has_gt:
            gt_classes = gt_classes[matched_idxs]
            gt_classes[matched_labels == 0] = self.num_classes
            gt_classes[matched_labels == -1] = -1
        else:
            gt_classes = torch.zeros_like(matched_idxs) + self.num_classes
        sampled_fg_idxs, sampled_bg_idxs = subsample_labels(gt_classes, self.batch_size_per_image,
                                                            self.positive_fraction, self.num_classes)
        sampled_idxs = torch.cat([sampled_fg_idxs, sampled_bg_idxs], dim=0)
        return sampled_idxs, gt_classes[sampled_idxs]

    @torch.no_grad()
    def label_and_sample_proposals(self, proposals: list[Instances], targets: list[Instances]) -> list[Instances]:
        if self.proposal_append_gt:
            proposals = add_ground_truth_to_proposals(targets, proposals)
        out = []
        for proposals_per_image, targets_per_image in zip(proposals, targets):
            has_gt = len(targets_per_image) > 0
            match_quality_matrix = pairwise_iou(targets_per_image.gt_boxes, proposals_per_image.proposal_boxes)
            matched_idxs, matched_labels = self.proposal_matcher(match_quality_matrix)
            sampled_idxs, gt_classes = self._sample_proposals(matched_idxs, matched_labels, targets_per_image.gt_classes)
            proposals_per_image = proposals_per_image[sampled_idxs]
            proposals_per_image.gt_classes = gt_classes
            if has_gt:
                sampled_targets = matched_idxs[sampled_idxs]
                for name, value in targets_per_image.get_fields().items():
                    if name.startswith("gt_") and not proposals_per_image.has(name):
                        if isinstance(value, BitMasks):  # a reference per proposal, not a full-image copy
                            value = IndexedBitMasks(value, sampled_targets)
                        else:
                            value = value[sampled_targets]
                        proposals_per_image.set(name, value)
            else:
                proposals_per_image.gt_boxes = Boxes(torch.zeros(len(sampled_idxs), 4, device=gt_classes.device))
            out.append(proposals_per_image)
        return out

    # forward ---------------------------------------------------------------------------------
    def forward(self, images, features: dict[str, torch.Tensor], proposals: list[Instances],
                targets: list[Instances] | None = None):
        """Training: ([], losses); inference: (per image Instances with pred_boxes/scores/pred_classes/pred_masks, {})."""
        if self.training:
            if targets is None:
                raise ValueError("ROI heads training needs targets")
            proposals = self.label_and_sample_proposals(proposals, targets)
            losses = self._forward_box(features, proposals)
            losses.update(self._forward_mask(features, proposals))
            return proposals, losses
        features = self._in_pooler_layout(features)
        pred_instances = self._forward_box(features, proposals)
        pred_instances = self.forward_with_given_boxes(features, pred_instances)
        return pred_instances, {}

    def _in_pooler_layout(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The pooled feature maps in the memory format the poolers read (channels-last where
        ``ROIPooler.pools_channels_last``), converted once per batch rather than in every pooler call."""
        names = set(self.box_in_features) | set(self.mask_in_features if self.mask_on else ())
        device = features[self.box_in_features[0]].device
        fmt = torch.channels_last if self.box_pooler.pools_channels_last(device) else torch.contiguous_format
        return {k: (v.contiguous(memory_format=fmt) if k in names else v) for k, v in features.items()}

    def forward_with_given_boxes(self, features, instances: list[Instances]) -> list[Instances]:
        assert not self.training
        return self._forward_mask(features, instances)

    def _forward_box(self, features, proposals: list[Instances]):
        features = [features[f] for f in self.box_in_features]
        box_features = self.box_pooler(features, [x.proposal_boxes for x in proposals])
        box_features = self.box_head(box_features)
        predictions = self.box_predictor(box_features)
        if self.training:
            return self.box_predictor.losses(predictions, proposals)
        pred_instances, _ = self.box_predictor.inference(predictions, proposals)
        return pred_instances

    def _forward_mask(self, features, instances: list[Instances]):
        if not self.mask_on:
            return {} if self.training else instances
        if self.training:
            instances = select_foreground_proposals(instances, self.num_classes)
            boxes = [x.proposal_boxes for x in instances]
        else:
            boxes = [x.pred_boxes for x in instances]
        features = [features[f] for f in self.mask_in_features]
        if sum(len(b) for b in boxes) == 0:
            if self.training:
                return {"loss_mask": sum(p.sum() * 0 for p in self.mask_head.parameters())}
            m = self.mask_pooler.output_size[0] * 2
            for inst in instances:
                inst.pred_masks = features[0].new_zeros((0, 1, m, m))
            return instances
        mask_features = self.mask_pooler(features, boxes)
        return self.mask_head(mask_features, instances)
