"""Dataset record -> model input (detectron2's ``DatasetMapper``), and the training loader.

A mapped input is ``{"image": uint8 Tensor[3, H, W] (resized, channel order of ``INPUT.FORMAT``),
"height", "width" (original size), "image_id", "file_name", "um_per_px", "instances": Instances(
image_size=(H, W), gt_boxes=Boxes xyxy, gt_classes=int64 0-based, gt_masks=BitMasks bool[N, H, W])}``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from ..pixels import read_rgb
from .coco import segmentation_to_mask
from .transforms import (
    RandomDefocus,
    RandomFlip,
    RandomGrayscale,
    RandomIllumination,
    RandomJPEG,
    RandomNoise,
    RandomPhotometric,
    RandomRotate90,
    RandomWhiteBalance,
    ResizeShortestEdge,
    ResizeToPixelSize,
    Sample,
    apply_augmentations,
)


def read_image(path: str, fmt: str = "RGB") -> np.ndarray:
    """uint8 [H, W, 3] in ``fmt`` ("RGB" or "BGR"), by the one pixel rule (:mod:`inference.pixels`)."""
    rgb = read_rgb(path)
    return np.ascontiguousarray(rgb[:, :, ::-1]) if fmt == "BGR" else rgb


def build_augmentations(cfg, is_train: bool) -> list:
    """Resize (+ flip and the microscopy augmentations of ``INPUT.AUGMENT`` when training).

    With ``INPUT.PHYSICAL_SCALE.ENABLED`` training resamples every image to ``INPUT.UM_PER_PX``
    (jittered) and crops it instead of the short-edge resize; the trainer fills ``INPUT.UM_PER_PX``
    from the data first when it is 0.
    """
    if not is_train:
        return [ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, "choice")]
    physical = cfg.INPUT.get("PHYSICAL_SCALE")
    if physical is not None and physical.ENABLED:
        um = float(cfg.INPUT.get("UM_PER_PX", 0.0) or 0.0)
        if not um > 0:
            raise ValueError("INPUT.PHYSICAL_SCALE.ENABLED needs INPUT.UM_PER_PX > 0 (the trainer computes it from the data)")
        augs: list = [ResizeToPixelSize(um, tuple(physical.JITTER), tuple(physical.CROP))]
    else:
        augs = [ResizeShortestEdge(list(cfg.INPUT.MIN_SIZE_TRAIN), cfg.INPUT.MAX_SIZE_TRAIN,
                                   cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING)]
    flip = cfg.INPUT.RANDOM_FLIP
    if flip == "horizontal":
        augs.append(RandomFlip(0.5, horizontal=True))
    elif flip == "vertical":
        augs.append(RandomFlip(0.5, horizontal=False, vertical=True))
    elif flip not in ("none", ""):
        raise ValueError(f"INPUT.RANDOM_FLIP must be horizontal, vertical or none, not {flip!r}")
    extra = cfg.INPUT.get("AUGMENT")
    if extra is not None:
        if extra.VFLIP and flip != "vertical":
            augs.append(RandomFlip(0.5, horizontal=False, vertical=True))
        if extra.ROTATE90:
            augs.append(RandomRotate90(1.0))
        if extra.PHOTOMETRIC_PROB > 0:
            augs.append(RandomPhotometric(tuple(extra.BRIGHTNESS), tuple(extra.CONTRAST), tuple(extra.GAMMA),
                                          extra.PHOTOMETRIC_PROB))
        # the order of image formation: lamp, camera colour, optics, sensor, file
        if extra.ILLUMINATION_PROB > 0:
            augs.append(RandomIllumination(extra.ILLUMINATION_TILT, tuple(extra.ILLUMINATION_VIGNETTE),
                                           extra.ILLUMINATION_PROB))
        if extra.WHITE_BALANCE_PROB > 0:
            augs.append(RandomWhiteBalance(tuple(extra.WHITE_BALANCE), extra.WHITE_BALANCE_PROB))
        if extra.GRAYSCALE_PROB > 0:
            augs.append(RandomGrayscale(extra.GRAYSCALE_PROB))
        if extra.DEFOCUS_PROB > 0:
            augs.append(RandomDefocus(tuple(extra.DEFOCUS_SIGMA), extra.DEFOCUS_PROB))
        if extra.NOISE_PROB > 0:
            augs.append(RandomNoise(tuple(extra.NOISE_SIGMA), extra.NOISE_PROB))
        if extra.JPEG_PROB > 0:
            augs.append(RandomJPEG(tuple(extra.JPEG_QUALITY), extra.JPEG_PROB))
    return augs


class DatasetMapper:
    """Reads a record's image, decodes its masks, augments, and builds the model input dict."""

    def __init__(self, *, is_train: bool, augmentations: Sequence[Callable], image_format: str = "BGR",
                 mask_on: bool = True, seed: int = 0):
        self.is_train = is_train
        self.augmentations = list(augmentations)
        self.image_format = image_format
        self.mask_on = mask_on
        self.seed = seed

    @classmethod
    def from_config(cls, cfg, is_train: bool, seed: int = 0) -> DatasetMapper:
        return cls(is_train=is_train, augmentations=build_augmentations(cfg, is_train),
                   image_format=cfg.INPUT.FORMAT, mask_on=cfg.MODEL.MASK_ON, seed=seed)

    def __call__(self, record: dict, sample_index: int = 0) -> dict:
        from ..structures import BitMasks, Boxes, Instances

        image = read_image(record["file_name"], self.image_format)
        h, w = image.shape[:2]
        if (h, w) != (record["height"], record["width"]):
            raise ValueError(f"{record['file_name']}: image is {w}x{h}, record says {record['width']}x{record['height']}")
        anns = [a for a in record.get("annotations", []) if not a.get("iscrowd", 0)] if self.is_train else []
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns], np.float32).reshape(-1, 4)
        if self.is_train and self.mask_on:
            masks = np.stack([segmentation_to_mask(a["segmentation"], h, w) for a in anns]) if anns else np.zeros((0, h, w), bool)
        else:
            masks = np.zeros((0, h, w), bool)
        # one generator per sample, from (seed, sample index): the same stream after a resume
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(sample_index)]))
        s = apply_augmentations(self.augmentations, Sample(image, boxes, masks, record.get("um_per_px")), rng)
        nh, nw = s.hw
        out = {"file_name": record["file_name"], "image_id": record["image_id"], "height": h, "width": w,
               "um_per_px": record.get("um_per_px"),
               "image": torch.as_tensor(np.ascontiguousarray(s.image.transpose(2, 0, 1)))}
        if self.is_train:
            inst = Instances((nh, nw))
            b = torch.as_tensor(s.boxes, dtype=torch.float32).reshape(-1, 4)
            b[:, 0::2] = b[:, 0::2].clamp(0, nw)
            b[:, 1::2] = b[:, 1::2].clamp(0, nh)
            inst.gt_boxes = Boxes(b)
            inst.gt_classes = torch.as_tensor([a["category_id"] for a in anns], dtype=torch.int64)
            if self.mask_on:
                inst.gt_masks = BitMasks(torch.from_numpy(np.ascontiguousarray(s.masks)))
            keep = (b[:, 2] - b[:, 0] > 1e-5) & (b[:, 3] - b[:, 1] > 1e-5)
            if self.mask_on:
                keep &= inst.gt_masks.nonempty()
            out["instances"] = inst[keep]
        return out


class TrainingBatches(torch.utils.data.IterableDataset):
    """Endless batches of mapped training inputs, deterministic by ``seed`` and resumable.

    Batch ``b`` holds samples ``b * batch_size ...`` of an endless stream of per-epoch seeded
    permutations, grouped by aspect ratio (landscape/portrait) as detectron2 does; starting at
    ``start_batch`` gives exactly the batches an uninterrupted run would have seen from there
    (augmentations are drawn per sample index). With DataLoader workers, worker ``k`` of ``n``
    makes batches ``k, k + n, ...`` and the loader hands them out in order.
    """

    def __init__(self, records: list[dict], mapper: DatasetMapper, batch_size: int, seed: int = 0,
                 start_batch: int = 0, aspect_ratio_grouping: bool = True):
        if not records:
            raise ValueError("no training records (all filtered out?)")
        self.records, self.mapper, self.batch_size = records, mapper, int(batch_size)
        self.seed, self.start_batch, self.grouping = int(seed), int(start_batch), aspect_ratio_grouping

    def _index_batches(self) -> Iterator[list[int]]:
        n = len(self.records)
        buckets: dict[bool, list[int]] = {True: [], False: []}
        pos, epoch = 0, 0
        while True:
            perm = np.random.default_rng(np.random.SeedSequence([self.seed, 7919, epoch])).permutation(n)
            for i in perm:
                rec = self.records[int(i)]
                key = rec["width"] >= rec["height"] if self.grouping else True
                buckets[key].append(pos * n + int(i))  # encode (stream position, record)
                pos_batch = buckets[key]
                if len(pos_batch) == self.batch_size:
                    yield list(pos_batch)
                    buckets[key] = []
            pos += 1
            epoch += 1

    def batch_plan(self, n_batches: int, start: int = 0) -> list[list[int]]:
        out = []
        for b, batch in enumerate(self._index_batches()):
            if b >= start + n_batches:
                break
            if b >= start:
                out.append(batch)
        return out

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        n = len(self.records)
        for b, batch in enumerate(self._index_batches()):
            if b < self.start_batch or (b - self.start_batch) % nw != wid:
                continue
            # sample index = batch * batch_size + slot: stable across resumes and worker counts
            yield [self.mapper(self.records[code % n], b * self.batch_size + k) for k, code in enumerate(batch)]


def _identity(x):
    return x


def build_train_loader(records: list[dict], mapper: DatasetMapper, batch_size: int, seed: int = 0,
                       start_batch: int = 0, num_workers: int = 0, aspect_ratio_grouping: bool = True):
    """A DataLoader yielding lists of mapped inputs (one list per iteration)."""
    ds = TrainingBatches(records, mapper, batch_size, seed, start_batch, aspect_ratio_grouping)
    return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=num_workers,
                                       collate_fn=_identity, persistent_workers=num_workers > 0)


def filter_records(records: list[dict], filter_empty: bool = True) -> list[dict]:
    """Drop images with no (non-crowd) annotation when ``filter_empty`` (detectron2's default)."""
    if not filter_empty:
        return list(records)
    return [r for r in records if any(not a.get("iscrowd", 0) for a in r.get("annotations", []))]
