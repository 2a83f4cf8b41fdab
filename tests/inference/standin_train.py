"""A tiny stand-in detector and a training script around the real Trainer (for trainer tests).

The stand-in takes detectron2-style batched inputs and returns a dict of losses (a per-pixel
foreground logit trained against the union of the instance masks), so the trainer, data loader,
checkpoints and resume are tested without the full Cascade Mask R-CNN.

As a script (used by the SIGKILL resume test)::

    python standin_train.py DATA_JSON OUTPUT_DIR MAX_ITER CHECKPOINT_PERIOD [--resume] [--sleep S]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


class StandInModel(nn.Module):
    def __init__(self, sleep: float = 0.0):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 1, 1)
        self.sleep = sleep

    def forward(self, batched_inputs):
        h = max(b["image"].shape[1] for b in batched_inputs)
        w = max(b["image"].shape[2] for b in batched_inputs)

        def pad(t):  # images of a batch differ in shape after 90 degree rotations
            return F.pad(t, (0, w - t.shape[-1], 0, h - t.shape[-2]))

        x = torch.stack([pad(b["image"].float() / 255.0) for b in batched_inputs])
        logits = self.head(F.relu(self.norm(self.conv(x))))[:, 0]
        if not self.training:
            return [{"foreground": lg.sigmoid() > 0.5} for lg in logits]
        target = torch.stack([pad(b["instances"].gt_masks.tensor.any(0).float()) for b in batched_inputs])
        if self.sleep:
            time.sleep(self.sleep)
        return {"loss_mask": F.binary_cross_entropy_with_logits(logits, target),
                "loss_reg": 1e-3 * logits.pow(2).mean()}


def standin_cfg(max_iter: int, checkpoint_period: int, short_edge: int = 64):
    from inference.engine.defaults import get_training_cfg

    cfg = get_training_cfg()
    cfg.merge_from_list(["SOLVER.MAX_ITER", str(max_iter), "SOLVER.CHECKPOINT_PERIOD", str(checkpoint_period),
                         "SOLVER.BASE_LR", "0.05", "SOLVER.WARMUP_ITERS", "3", "SOLVER.STEPS", f"[{max_iter // 2}]",
                         "SOLVER.IMS_PER_BATCH", "2", "SOLVER.LOG_PERIOD", "5", "SOLVER.MAX_TO_KEEP", "3",
                         "SOLVER.CLIP_GRADIENTS.ENABLED", "True",
                         "INPUT.MIN_SIZE_TRAIN", f"[{short_edge}]", "INPUT.MAX_SIZE_TRAIN", str(short_edge * 2),
                         "DATALOADER.NUM_WORKERS", "0", "MODEL.ROI_HEADS.NUM_CLASSES", "6", "MODEL.MASK_ON", "True"])
    cfg.INPUT.AUGMENT.ROTATE90 = True
    cfg.INPUT.AUGMENT.PHOTOMETRIC_PROB = 0.5
    return cfg


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_json")
    ap.add_argument("output")
    ap.add_argument("max_iter", type=int)
    ap.add_argument("period", type=int)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--sleep", type=float, default=0.0)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    from inference.engine.launch import train_from_config

    cfg = standin_cfg(a.max_iter, a.period)
    result = train_from_config(cfg, a.data_json, a.output, resume=a.resume, device="cpu", seed=3, progress=False,
                               model_builder=lambda c: StandInModel(a.sleep), log=lambda s: print(s, flush=True))
    print("RESULT " + json.dumps({k: result[k] for k in ("start_iter", "iterations", "final_checkpoint")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
