"""Region Proposal Network: StandardRPNHead, anchor labelling/losses and test-time proposal selection."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...layers import Conv2d, ShapeSpec, batched_nms, smooth_l1_loss
from ...structures import Boxes, ImageList, Instances, pairwise_iou
from ..box_regression import Box2BoxTransform
from ..matcher import Matcher
from ..sampling import subsample_labels
from .anchor_generator import DefaultAnchorGenerator


class StandardRPNHead(nn.Module):
    """Shared 3x3 ``conv`` + ReLU, then 1x1 ``objectness_logits`` (A) and ``anchor_deltas`` (A * 4)."""

    def __init__(self, *, in_channels: int, num_anchors: int, box_dim: int = 4, conv_dims: list[int] = (-1,)):
        super().__init__()
        conv_dims = list(conv_dims)
        if len(conv_dims) == 1:
            out_channels = in_channels if conv_dims[0] == -1 else conv_dims[0]
            self.conv = Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
            nn.init.normal_(self.conv.weight, std=0.01)
            nn.init.constant_(self.conv.bias, 0)
            convs = [self.conv]
        else:
            self.conv = nn.Sequential()
            out_channels = in_channels
            for k, d in enumerate(conv_dims):
                out_channels = in_channels if d == -1 else d
                c = Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
                nn.init.normal_(c.weight, std=0.01)
                nn.init.constant_(c.bias, 0)
                self.conv.add_module(f"conv{k}", c)
                self.conv.add_module(f"relu{k}", nn.ReLU())
                in_channels = out_channels
            convs = []
        self._single_conv = bool(convs)
        self.objectness_logits = nn.Conv2d(out_channels, num_anchors, kernel_size=1, stride=1)
        self.anchor_deltas = nn.Conv2d(out_channels, num_anchors * box_dim, kernel_size=1, stride=1)
        for layer in (self.objectness_logits, self.anchor_deltas):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0)

    def forward(self, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per level: objectness Tensor[N, A, Hi, Wi] and deltas Tensor[N, A * 4, Hi, Wi]."""
        pred_objectness_logits, pred_anchor_deltas = [], []
        for x in features:
            t = F.relu_(self.conv(x)) if self._single_conv else self.conv(x)
            pred_objectness_logits.append(self.objectness_logits(t))
            pred_anchor_deltas.append(self.anchor_deltas(t))
        return pred_objectness_logits, pred_anchor_deltas


def find_top_rpn_proposals(proposals: list[torch.Tensor], pred_objectness_logits: list[torch.Tensor],
                           image_sizes: list[tuple[int, int]], nms_thresh: float, pre_nms_topk: int,
                           post_nms_topk: int, min_box_size: float, training: bool) -> list[Instances]:
    """Per level top ``pre_nms_topk`` by objectness, clip, drop small, NMS per level, top ``post_nms_topk``.

    ``proposals``: per level Tensor[N, Hi*Wi*A, 4]; ``pred_objectness_logits``: per level Tensor[N, Hi*Wi*A].
    Returns per image Instances with ``proposal_boxes`` and ``objectness_logits``.
    """
    num_images = len(image_sizes)
    device = proposals[0].device if proposals else torch.device("cpu")
    topk_scores, topk_proposals, level_ids = [], [], []
    batch_idx = torch.arange(num_images, device=device)
    for level_id, (proposals_i, logits_i) in enumerate(zip(proposals, pred_objectness_logits)):
        hi_wi_a = logits_i.shape[1]
        num_proposals_i = min(hi_wi_a, pre_nms_topk)
        topk_scores_i, topk_idx = logits_i.topk(num_proposals_i, dim=1)
        topk_proposals.append(proposals_i[batch_idx[:, None], topk_idx])
        topk_scores.append(topk_scores_i)
        level_ids.append(torch.full((num_proposals_i,), level_id, dtype=torch.int64, device=device))
    topk_scores = torch.cat(topk_scores, dim=1)
    topk_proposals = torch.cat(topk_proposals, dim=1)
    level_ids = torch.cat(level_ids, dim=0)

    results = []
    for n, image_size in enumerate(image_sizes):
        boxes = Boxes(topk_proposals[n])
        scores_per_img = topk_scores[n]
        lvl = level_ids
        valid_mask = torch.isfinite(boxes.tensor).all(dim=1) & torch.isfinite(scores_per_img)
        if not valid_mask.all():
            if training:
                raise FloatingPointError("Predicted boxes or scores contain Inf/NaN. Training has diverged.")
            boxes, scores_per_img, lvl = boxes[valid_mask], scores_per_img[valid_mask], lvl[valid_mask]
        boxes.clip(image_size)
        keep = boxes.nonempty(threshold=min_box_size)
        if not keep.all():
            boxes, scores_per_img, lvl = boxes[keep], scores_per_img[keep], lvl[keep]
        keep = batched_nms(boxes.tensor, scores_per_img, lvl, nms_thresh)
        keep = keep[:post_nms_topk]
        res = Instances(image_size)
        res.proposal_boxes = boxes[keep]
        res.objectness_logits = scores_per_img[keep]
        results.append(res)
    return results


class RPN(nn.Module):
    """Region proposal network over ``in_features``; training returns losses loss_rpn_cls/loss_rpn_loc."""

    def __init__(self, *, in_features: list[str], head: nn.Module, anchor_generator: DefaultAnchorGenerator,
                 anchor_matcher: Matcher, box2box_transform: Box2BoxTransform, batch_size_per_image: int,
                 positive_fraction: float, pre_nms_topk: tuple[int, int], post_nms_topk: tuple[int, int],
                 nms_thresh: float = 0.7, min_box_size: float = 0.0, anchor_boundary_thresh: float = -1.0,
                 loss_weight: dict[str, float] | None = None, box_reg_loss_type: str = "smooth_l1",
                 smooth_l1_beta: float = 0.0):
        super().__init__()
        self.in_features = list(in_features)
        self.rpn_head = head
        self.anchor_generator = anchor_generator
        self.anchor_matcher = anchor_matcher
        self.box2box_transform = box2box_transform
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.pre_nms_topk = {True: pre_nms_topk[0], False: pre_nms_topk[1]}
        self.post_nms_topk = {True: post_nms_topk[0], False: post_nms_topk[1]}
        self.nms_thresh = nms_thresh
        self.min_box_size = float(min_box_size)
        self.anchor_boundary_thresh = anchor_boundary_thresh
        self.loss_weight = loss_weight or {"loss_rpn_cls": 1.0, "loss_rpn_loc": 1.0}
        if box_reg_loss_type != "smooth_l1":
            raise ValueError(f"RPN box loss {box_reg_loss_type!r} not supported (smooth_l1)")
        self.smooth_l1_beta = smooth_l1_beta

    @classmethod
    def from_config(cls, cfg, input_shape: dict[str, ShapeSpec]) -> RPN:
        r = cfg.MODEL.RPN
        in_features = list(r.IN_FEATURES)
        shapes = [input_shape[f] for f in in_features]
        channels = {s.channels for s in shapes}
        if len(channels) != 1:
            raise ValueError("RPN input features must all have the same number of channels")
        anchor_generator = DefaultAnchorGenerator.from_config(cfg, [s.stride for s in shapes])
        num_anchors = set(anchor_generator.num_cell_anchors)
        if len(num_anchors) != 1:
            raise ValueError("every feature level needs the same number of anchors")
        if r.HEAD_NAME != "StandardRPNHead":
            raise ValueError(f"MODEL.RPN.HEAD_NAME {r.HEAD_NAME!r} not supported (StandardRPNHead)")
        if cfg.MODEL.PROPOSAL_GENERATOR.NAME != "RPN":
            raise ValueError(f"MODEL.PROPOSAL_GENERATOR.NAME {cfg.MODEL.PROPOSAL_GENERATOR.NAME!r} not supported (RPN)")
        head = StandardRPNHead(in_channels=channels.pop(), num_anchors=num_anchors.pop(), conv_dims=list(r.CONV_DIMS))
        return cls(
            in_features=in_features, head=head, anchor_generator=anchor_generator,
            anchor_matcher=Matcher(r.IOU_THRESHOLDS, r.IOU_LABELS, allow_low_quality_matches=True),
            box2box_transform=Box2BoxTransform(weights=r.BBOX_REG_WEIGHTS),
            batch_size_per_image=r.BATCH_SIZE_PER_IMAGE, positive_fraction=r.POSITIVE_FRACTION,
            pre_nms_topk=(r.PRE_NMS_TOPK_TRAIN, r.PRE_NMS_TOPK_TEST),
            post_nms_topk=(r.POST_NMS_TOPK_TRAIN, r.POST_NMS_TOPK_TEST),
            nms_thresh=r.NMS_THRESH, min_box_size=cfg.MODEL.PROPOSAL_GENERATOR.MIN_SIZE,
            anchor_boundary_thresh=r.BOUNDARY_THRESH,
            loss_weight={"loss_rpn_cls": r.LOSS_WEIGHT, "loss_rpn_loc": r.BBOX_REG_LOSS_WEIGHT * r.LOSS_WEIGHT},
            box_reg_loss_type=r.BBOX_REG_LOSS_TYPE, smooth_l1_beta=r.SMOOTH_L1_BETA)

    # training ---------------------------------------------------------------------------------
    @torch.no_grad()
    def label_and_sample_anchors(self, anchors: list[torch.Tensor], gt_instances: list[Instances]
                                 ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        anchors = Boxes(torch.cat(anchors, dim=0))
        gt_labels, matched_gt_boxes = [], []
        for image_size_i, gt_i in zip([x.image_size for x in gt_instances], gt_instances):
            gt_boxes_i = gt_i.gt_boxes
            match_quality_matrix = pairwise_iou(gt_boxes_i, anchors)
            matched_idxs, gt_labels_i = self.anchor_matcher(match_quality_matrix)
            gt_labels_i = gt_labels_i.to(device=gt_boxes_i.device)
            if self.anchor_boundary_thresh >= 0:
                t = self.anchor_boundary_thresh
                h, w = image_size_i
                a = anchors.tensor
                inside = (a[:, 0] >= -t) & (a[:, 1] >= -t) & (a[:, 2] < w + t) & (a[:, 3] < h + t)
                gt_labels_i[~inside] = -1
            gt_labels_i = self._subsample_labels(gt_labels_i)
            if len(gt_boxes_i) == 0:
                matched_gt_boxes_i = torch.zeros_like(anchors.tensor)
            else:
                matched_gt_boxes_i = gt_boxes_i[matched_idxs].tensor
            gt_labels.append(gt_labels_i)
            matched_gt_boxes.append(matched_gt_boxes_i)
        return gt_labels, matched_gt_boxes

    def _subsample_labels(self, label: torch.Tensor) -> torch.Tensor:
        pos_idx, neg_idx = subsample_labels(label, self.batch_size_per_image, self.positive_fraction, 0)
        label = label.fill_(-1)
        label.scatter_(0, pos_idx, 1)
        label.scatter_(0, neg_idx, 0)
        return label

    def losses(self, anchors: list[torch.Tensor], pred_objectness_logits: list[torch.Tensor],
               gt_labels: list[torch.Tensor], pred_anchor_deltas: list[torch.Tensor],
               gt_boxes: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        num_images = len(gt_labels)
        gt_labels = torch.stack(gt_labels)
        anchors = torch.cat(anchors, dim=0)
        pos_mask = gt_labels == 1
        gt_anchor_deltas = torch.stack([self.box2box_transform.get_deltas(anchors, k) for k in gt_boxes])
        loc_loss = smooth_l1_loss(torch.cat(pred_anchor_deltas, dim=1)[pos_mask], gt_anchor_deltas[pos_mask],
                                  self.smooth_l1_beta, reduction="sum")
        valid_mask = gt_labels >= 0
        objectness_loss = F.binary_cross_entropy_with_logits(
            torch.cat(pred_objectness_logits, dim=1)[valid_mask], gt_labels[valid_mask].to(torch.float32), reduction="sum")
        normalizer = self.batch_size_per_image * num_images
        losses = {"loss_rpn_cls": objectness_loss / normalizer, "loss_rpn_loc": loc_loss / normalizer}
        return {k: v * self.loss_weight.get(k, 1.0) for k, v in losses.items()}

    # forward ----------------------------------------------------------------------------------
    def forward(self, images: ImageList, features: dict[str, torch.Tensor], gt_instances: list[Instances] | None = None
                ) -> tuple[list[Instances], dict[str, torch.Tensor]]:
        features = [features[f] for f in self.in_features]
        anchors = self.anchor_generator(features)
        pred_objectness_logits, pred_anchor_deltas = self.rpn_head(features)
        # (N, A, Hi, Wi) -> (N, Hi*Wi*A); (N, A*B, Hi, Wi) -> (N, Hi*Wi*A, B)
        pred_objectness_logits = [s.permute(0, 2, 3, 1).flatten(1) for s in pred_objectness_logits]
        pred_anchor_deltas = [
            x.view(x.shape[0], -1, self.anchor_generator.box_dim, x.shape[-2], x.shape[-1]).permute(0, 3, 4, 1, 2).flatten(1, -2)
            for x in pred_anchor_deltas
        ]
        if self.training:
            if gt_instances is None:
                raise ValueError("RPN training needs gt_instances")
            gt_labels, gt_boxes = self.label_and_sample_anchors(anchors, gt_instances)
            losses = self.losses(anchors, pred_objectness_logits, gt_labels, pred_anchor_deltas, gt_boxes)
        else:
            losses = {}
        proposals = self.predict_proposals(anchors, pred_objectness_logits, pred_anchor_deltas, images.image_sizes)
        return proposals, losses

    @torch.no_grad()
    def predict_proposals(self, anchors, pred_objectness_logits, pred_anchor_deltas, image_sizes) -> list[Instances]:
        pred_proposals = self._decode_proposals(anchors, pred_anchor_deltas)
        return find_top_rpn_proposals(pred_proposals, [p.detach() for p in pred_objectness_logits], image_sizes,
                                      self.nms_thresh, self.pre_nms_topk[self.training],
                                      self.post_nms_topk[self.training], self.min_box_size, self.training)

    def _decode_proposals(self, anchors: list[torch.Tensor], pred_anchor_deltas: list[torch.Tensor]) -> list[torch.Tensor]:
        n = pred_anchor_deltas[0].shape[0]
        proposals = []
        for anchors_i, deltas_i in zip(anchors, pred_anchor_deltas):
            b = anchors_i.size(1)
            deltas_i = deltas_i.reshape(-1, b)
            anchors_i = anchors_i.unsqueeze(0).expand(n, -1, -1).reshape(-1, b)
            proposals_i = self.box2box_transform.apply_deltas(deltas_i, anchors_i)
            proposals.append(proposals_i.view(n, -1, b))
        return proposals
