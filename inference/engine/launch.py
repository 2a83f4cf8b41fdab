"""Train a detector from a config and a COCO dataset (what ``python -m inference train`` runs)."""
from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..data.classes import CLASS_NAMES
from ..data.coco import dataset_summary, load_coco
from ..data.mapper import DatasetMapper, build_train_loader, filter_records
from .checkpointer import load_pretrained_backbone, load_weights_file
from .optim import GradientClipper, build_lr_scheduler, build_optimizer
from .trainer import Trainer


def build_model_from_config(cfg):
    """The engine's ``build_model(cfg)`` (detectron2's name), imported late: the model code is large."""
    from ..modeling import build_model

    return build_model(cfg)


def pick_device(requested: str | None) -> torch.device:
    if requested in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def model_um_per_px(records: Sequence[dict], min_size_test: int) -> float | None:
    """The pixel size (µm) at the model's input that the test-time resize gives the training images:
    the median over images of ``um_per_px * short edge / MIN_SIZE_TEST`` (``um_per_px`` itself when
    there is no resize). None when an image has no ``um_per_px``."""
    values = []
    for r in records:
        um = r.get("um_per_px")
        if um is None or not um > 0:
            return None
        short = min(int(r["height"]), int(r["width"]))
        values.append(float(um) * (short / min_size_test if min_size_test > 0 else 1.0))
    return float(np.median(values)) if values else None


def set_physical_scale(cfg, records: Sequence[dict], log: Callable[[str], None] = print) -> None:
    """Write the model's input pixel size (``INPUT.UM_PER_PX``, computed from ``records`` when the
    config leaves it 0) and the training images' pixel-size range (``INPUT.UM_PER_PX_RANGE``) into
    ``cfg``. Without ``um_per_px`` on every image both stay unset, unless physical-scale training is
    asked for, which is then an error."""
    physical = bool(cfg.INPUT.get("PHYSICAL_SCALE") and cfg.INPUT.PHYSICAL_SCALE.ENABLED)
    computed = model_um_per_px(records, int(cfg.INPUT.MIN_SIZE_TEST))
    if computed is None:
        if physical:
            raise ValueError("INPUT.PHYSICAL_SCALE.ENABLED needs um_per_px on every training image")
        return
    ums = [float(r["um_per_px"]) for r in records]
    if not float(cfg.INPUT.UM_PER_PX or 0.0) > 0:
        cfg.INPUT.UM_PER_PX = round(computed, 5)
    cfg.INPUT.UM_PER_PX_RANGE = [round(min(ums), 5), round(max(ums), 5)]
    log(f"model input pixel size {cfg.INPUT.UM_PER_PX} um/px (training images {cfg.INPUT.UM_PER_PX_RANGE[0]}-"
        f"{cfg.INPUT.UM_PER_PX_RANGE[1]} um/px{', resampled to it' if physical else ''})")


def train_from_config(cfg, train_json: str, output_dir: str, *, image_root: str | None = None,
                      class_names: Sequence[str] | None = None, resume: bool = False, device: str | None = None,
                      seed: int = 0, num_workers: int | None = None, progress: bool | None = None,
                      model_builder: Callable | None = None, log: Callable[[str], None] = print) -> dict:
    """Train ``cfg`` on ``train_json``; checkpoints, ``metrics.json``, ``config.yaml`` and
    ``training.json`` go to ``output_dir``. With ``resume`` the newest checkpoint there is continued.
    Returns the run summary (also written to ``training.json``)."""
    os.makedirs(output_dir, exist_ok=True)
    dev = pick_device(device)  # None: CUDA when present, else CPU (MODEL.DEVICE is the inference default)
    class_names = tuple(class_names or CLASS_NAMES[: cfg.MODEL.ROI_HEADS.NUM_CLASSES])
    if len(class_names) != cfg.MODEL.ROI_HEADS.NUM_CLASSES:
        raise ValueError(f"{len(class_names)} class names but MODEL.ROI_HEADS.NUM_CLASSES is {cfg.MODEL.ROI_HEADS.NUM_CLASSES}")
    dataset = load_coco(train_json, image_root=image_root, class_names=class_names, unknown_classes="skip")
    records = filter_records(dataset.records, cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
    log(f"training on {len(records)} images of {train_json} ({dataset_summary(dataset)['instances']} instances), device {dev}")
    set_physical_scale(cfg, records, log)

    seed_everything(seed)
    model = (model_builder or build_model_from_config)(cfg).to(dev)
    model.train()
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    trainer = Trainer(model, [], optimizer, max_iter=cfg.SOLVER.MAX_ITER, scheduler=scheduler,
                      clipper=GradientClipper.from_config(cfg), output_dir=output_dir,
                      checkpoint_period=cfg.SOLVER.CHECKPOINT_PERIOD, max_to_keep=cfg.SOLVER.get("MAX_TO_KEEP", 2),
                      amp=cfg.SOLVER.AMP.ENABLED, log_period=cfg.SOLVER.get("LOG_PERIOD", 20), progress=progress,
                      log=log, extra_state={"class_names": list(class_names)})
    start = trainer.resume() if resume else 0
    if start == 0:
        if cfg.MODEL.WEIGHTS:
            state = load_weights_file(cfg.MODEL.WEIGHTS)
            missing, unexpected = model.load_state_dict(state, strict=False)
            log(f"initial weights {cfg.MODEL.WEIGHTS}: {len(state) - len(unexpected)} tensors loaded, "
                f"{len(missing)} missing, {len(unexpected)} unexpected")
        pretrained = cfg.MODEL.BACKBONE.get("PRETRAINED", "")
        if pretrained:
            load_pretrained_backbone(model, pretrained, log=log)
    with open(os.path.join(output_dir, "config.yaml"), "w", encoding="utf-8") as f:
        f.write(cfg.dump())
    mapper = DatasetMapper.from_config(cfg, is_train=True, seed=seed)
    workers = cfg.DATALOADER.NUM_WORKERS if num_workers is None else num_workers
    trainer.data = build_train_loader(records, mapper, cfg.SOLVER.IMS_PER_BATCH, seed=seed, start_batch=start,
                                      num_workers=workers, aspect_ratio_grouping=cfg.DATALOADER.ASPECT_RATIO_GROUPING)
    result = trainer.train()
    result.update({"class_names": list(class_names), "device": str(dev), "seed": seed,
                   "training_data": dataset_summary(dataset), "output_dir": os.path.abspath(output_dir)})
    with open(os.path.join(output_dir, "training.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    return result
