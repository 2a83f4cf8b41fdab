"""GeneralizedRCNN: normalize + pad -> backbone -> proposals -> ROI heads -> resize to the input size."""
from __future__ import annotations

import torch
from torch import nn

from ...structures import BitMasks, Boxes, ImageList, Instances, PolygonMasks, paste_masks_in_image


def detector_postprocess(results: Instances, output_height: int, output_width: int, mask_threshold: float = 0.5
                         ) -> Instances:
    """Scale boxes from the network input size to (output_height, output_width), clip, drop empty, paste masks."""
    scale_x, scale_y = output_width / results.image_size[1], output_height / results.image_size[0]
    results = Instances((output_height, output_width), **results.get_fields())
    output_boxes = results.pred_boxes
    output_boxes.scale(scale_x, scale_y)
    output_boxes.clip(results.image_size)
    results = results[output_boxes.nonempty()]
    if results.has("pred_masks"):
        masks = results.pred_masks
        if masks.dim() == 4:
            masks = masks[:, 0, :, :]
        results.pred_masks = paste_masks_in_image(masks, results.pred_boxes.tensor, (output_height, output_width),
                                                  threshold=mask_threshold)
    return results


class GeneralizedRCNN(nn.Module):
    """Glue only. ``forward(batched_inputs)``: list of dicts with ``image`` Tensor[C, H, W] (0-255, the
    config's INPUT.FORMAT channel order), optional ``height``/``width`` (output size) and, in training,
    ``instances`` (gt_boxes, gt_classes, gt_masks). Training returns a dict of named scalar losses;
    inference returns per image ``{"instances": Instances(pred_boxes, scores, pred_classes, pred_masks)}``.
    How it runs on a machine (memory format, NNPACK, CPU ROIAlign, threads) is not its business:
    ``inference.engine.execution.apply_execution_policy``.
    """

    def __init__(self, *, backbone: nn.Module, proposal_generator: nn.Module, roi_heads: nn.Module,
                 pixel_mean: list[float], pixel_std: list[float], input_format: str = "BGR"):
        super().__init__()
        self.backbone = backbone
        self.proposal_generator = proposal_generator
        self.roi_heads = roi_heads
        self.input_format = input_format
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        if self.pixel_mean.shape != self.pixel_std.shape:
            raise ValueError(f"PIXEL_MEAN {pixel_mean} and PIXEL_STD {pixel_std} have different lengths")

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: list[dict]) -> ImageList:
        """Normalize each image, then pad (zeros) to a multiple of the backbone's size divisibility."""
        images = [self._move(x["image"]) for x in batched_inputs]
        images = [(x - self.pixel_mean) / self.pixel_std for x in images]
        return ImageList.from_tensors(images, getattr(self.backbone, "size_divisibility", 0))

    def _move(self, image: torch.Tensor) -> torch.Tensor:
        return image.to(device=self.device, dtype=torch.float32, non_blocking=True)

    def _targets(self, batched_inputs: list[dict]) -> list[Instances]:
        targets = []
        for x in batched_inputs:
            if "instances" not in x:
                raise ValueError("training needs an 'instances' entry in every input dict")
            inst: Instances = x["instances"]
            out = Instances(inst.image_size)
            for name, value in inst.get_fields().items():
                if name == "gt_masks":
                    if isinstance(value, (torch.Tensor,)):
                        value = BitMasks(value)
                    elif isinstance(value, list):
                        value = PolygonMasks(value)
                elif name == "gt_boxes" and isinstance(value, torch.Tensor):
                    value = Boxes(value)
                elif name == "gt_classes":
                    value = torch.as_tensor(value, dtype=torch.int64)
                out.set(name, value.to(self.device) if hasattr(value, "to") else value)
            targets.append(out)
        return targets

    def forward(self, batched_inputs: list[dict]):
        if not self.training:
            return self.inference(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        gt_instances = self._targets(batched_inputs)
        features = self.backbone(images.tensor)
        proposals, proposal_losses = self.proposal_generator(images, features, gt_instances)
        _, detector_losses = self.roi_heads(images, features, proposals, gt_instances)
        losses = {}
        losses.update(detector_losses)
        losses.update(proposal_losses)
        return losses

    def inference(self, batched_inputs: list[dict], do_postprocess: bool = True):
        assert not self.training
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        proposals, _ = self.proposal_generator(images, features, None)
        results, _ = self.roi_heads(images, features, proposals, None)
        if not do_postprocess:
            return results
        processed = []
        for results_per_image, input_per_image, image_size in zip(results, batched_inputs, images.image_sizes):
            height = input_per_image.get("height", image_size[0])
            width = input_per_image.get("width", image_size[1])
            processed.append({"instances": detector_postprocess(results_per_image, height, width)})
        return processed

    @classmethod
    def from_config(cls, cfg) -> GeneralizedRCNN:
        from ..backbone import build_backbone
        from ..proposal_generator import RPN
        from ..roi_heads import build_roi_heads

        if cfg.MODEL.META_ARCHITECTURE != "GeneralizedRCNN":
            raise ValueError(f"MODEL.META_ARCHITECTURE {cfg.MODEL.META_ARCHITECTURE!r} not supported (GeneralizedRCNN)")
        if cfg.MODEL.KEYPOINT_ON:
            raise ValueError("MODEL.KEYPOINT_ON is not supported")
        if cfg.MODEL.LOAD_PROPOSALS:
            raise ValueError("MODEL.LOAD_PROPOSALS is not supported")
        backbone = build_backbone(cfg)
        shapes = backbone.output_shape()
        return cls(backbone=backbone, proposal_generator=RPN.from_config(cfg, shapes),
                   roi_heads=build_roi_heads(cfg, shapes), pixel_mean=list(cfg.MODEL.PIXEL_MEAN),
                   pixel_std=list(cfg.MODEL.PIXEL_STD), input_format=cfg.INPUT.FORMAT)
