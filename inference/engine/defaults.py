"""Training-only config keys (added on top of detectron2's schema) and loading a training config.

detectron2's schema has no microscopy augmentations and no pretrained-backbone file, so training adds
them here. They never reach a model bundle's ``config.yaml`` (:func:`inference_config` strips them),
so a bundle stays loadable by :func:`inference.config.load_config` and by detectron2 itself.
"""
from __future__ import annotations

import copy

from ..config import CfgNode, get_cfg

TRAINING_KEYS = {
    "INPUT": {
        "AUGMENT": {
            "VFLIP": False,                  # vertical flip with p 0.5 (on top of RANDOM_FLIP)
            "ROTATE90": False,               # rotate by k * 90 degrees, k uniform in 0..3
            "PHOTOMETRIC_PROB": 0.0,         # probability of brightness/contrast/gamma jitter
            "BRIGHTNESS": [0.9, 1.1],
            "CONTRAST": [0.9, 1.1],
            "GAMMA": [0.85, 1.15],
            "DEFOCUS_PROB": 0.0,             # probability of a Gaussian defocus blur
            "DEFOCUS_SIGMA": [0.3, 1.5],     # pixels
            "ILLUMINATION_PROB": 0.0,        # probability of an uneven lamp (tilt + off-centre vignette)
            "ILLUMINATION_TILT": 0.2,        # largest relative brightness change across the frame
            "ILLUMINATION_VIGNETTE": [0.0, 0.3],
            "WHITE_BALANCE_PROB": 0.0,       # probability of per-channel gains
            "WHITE_BALANCE": [0.85, 1.15],
            "GRAYSCALE_PROB": 0.0,           # probability of a monochrome camera (luminance in R, G, B)
            "NOISE_PROB": 0.0,               # probability of read + shot noise
            "NOISE_SIGMA": [1.0, 6.0],       # grey levels (read noise; shot noise at level 128)
            "JPEG_PROB": 0.0,                # probability of a JPEG round trip
            "JPEG_QUALITY": [40, 95],
        },
        # train at one physical scale: every image resampled to INPUT.UM_PER_PX (computed from the
        # training set's um_per_px when 0) times a factor drawn from JITTER, then cropped at random
        # to at most CROP (H, W) pixels; replaces the MIN_SIZE_TRAIN resize
        "PHYSICAL_SCALE": {
            "ENABLED": False,
            "JITTER": [0.85, 1.2],
            "CROP": [512, 640],
        },
    },
    "MODEL": {"BACKBONE": {"PRETRAINED": ""}},  # a user-provided backbone weights file (.pth/.pkl)
    "SOLVER": {
        "LOG_PERIOD": 20,
        "MAX_TO_KEEP": 2,                    # periodic checkpoints kept besides model_final.pth
        "COSINE_END_FACTOR": 0.0,            # unused when BASE_LR_END is set (detectron2 key)
    },
}


def _add(node: CfgNode, extra: dict) -> None:
    for k, v in extra.items():
        if isinstance(v, dict):
            if k not in node:
                node[k] = CfgNode({})
            _add(node[k], v)
        elif k not in node:
            node[k] = copy.deepcopy(v)


def add_training_config(cfg: CfgNode) -> CfgNode:
    """Add the training-only keys (with defaults) that ``cfg`` lacks; returns ``cfg``."""
    _add(cfg, TRAINING_KEYS)
    return cfg


def get_training_cfg() -> CfgNode:
    return add_training_config(get_cfg())


def load_training_config(path: str, overrides=()) -> CfgNode:
    """Defaults + training keys, then the YAML file, then ``KEY VALUE`` overrides."""
    cfg = get_training_cfg()
    cfg.merge_from_file(path)
    if overrides:
        cfg.merge_from_list(list(overrides))
    return cfg


def _strip(node: dict, extra: dict) -> None:
    for k, v in extra.items():
        if k not in node:
            continue
        if isinstance(v, dict) and isinstance(node[k], dict):
            _strip(node[k], v)
            if not node[k]:
                del node[k]
        else:
            del node[k]


def inference_config(cfg: CfgNode, frozen_bn: bool = True) -> CfgNode:
    """The config a trained model is shipped with: no training-only keys, BatchNorm as FrozenBN.

    BN trained with batch statistics is used with its running statistics at test time, which is
    exactly a FrozenBN with the same buffers (detectron2 ships its trained-from-scratch models so).
    """
    d = cfg.to_dict()
    _strip(d, TRAINING_KEYS)
    out = CfgNode(d)
    if frozen_bn:
        for node in (out.MODEL.RESNETS, out.MODEL.FPN, out.MODEL.ROI_BOX_HEAD, out.MODEL.ROI_MASK_HEAD):
            if node.NORM in ("BN", "SyncBN", "naiveSyncBN", "nnSyncBN"):
                node.NORM = "FrozenBN"
    out.MODEL.WEIGHTS = ""
    out.MODEL.DEVICE = "cpu"
    return out
