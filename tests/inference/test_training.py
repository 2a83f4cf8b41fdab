"""Training mode: named detectron2 losses, finite, decreasing on a tiny model and one synthetic image."""
import numpy as np
import pytest
import torch

from inference.config import get_cfg
from inference.modeling import build_model
from inference.structures import BitMasks, Boxes, Instances


def tiny_cfg(cascade: bool = True, norm: str = "BN"):
    cfg = get_cfg()
    cfg.merge_from_list([
        "MODEL.MASK_ON", "True", "MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone",
        "MODEL.BACKBONE.FREEZE_AT", "0", "MODEL.RESNETS.NORM", norm, "MODEL.RESNETS.DEPTH", "50",
        "MODEL.RESNETS.OUT_FEATURES", "[res2, res3, res4, res5]", "MODEL.RESNETS.STEM_OUT_CHANNELS", "8",
        "MODEL.RESNETS.RES2_OUT_CHANNELS", "16", "MODEL.RESNETS.WIDTH_PER_GROUP", "4",
        "MODEL.FPN.IN_FEATURES", "[res2, res3, res4, res5]", "MODEL.FPN.OUT_CHANNELS", "16",
        "MODEL.ANCHOR_GENERATOR.SIZES", "[[16], [32], [64], [128], [256]]",
        "MODEL.RPN.IN_FEATURES", "[p2, p3, p4, p5, p6]", "MODEL.RPN.PRE_NMS_TOPK_TRAIN", "500",
        "MODEL.RPN.POST_NMS_TOPK_TRAIN", "200", "MODEL.RPN.PRE_NMS_TOPK_TEST", "300", "MODEL.RPN.POST_NMS_TOPK_TEST", "100",
        "MODEL.ROI_HEADS.IN_FEATURES", "[p2, p3, p4, p5]", "MODEL.ROI_HEADS.NUM_CLASSES", "2",
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "64",
        "MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead", "MODEL.ROI_BOX_HEAD.NUM_FC", "2",
        "MODEL.ROI_BOX_HEAD.FC_DIM", "32", "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", "7",
        "MODEL.ROI_MASK_HEAD.NUM_CONV", "2", "MODEL.ROI_MASK_HEAD.CONV_DIM", "16",
        "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "256",
    ])
    if cascade:
        cfg.merge_from_list(["MODEL.ROI_HEADS.NAME", "CascadeROIHeads", "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG", "True"])
    else:
        cfg.merge_from_list(["MODEL.ROI_HEADS.NAME", "StandardROIHeads"])
    return cfg


def synthetic_input(h: int = 128, w: int = 160):
    yy, xx = np.mgrid[:h, :w]
    img = np.full((h, w, 3), 40, np.uint8)
    cells = [(40, 50, 14, 0), (90, 110, 18, 1), (30, 120, 10, 0)]
    masks, boxes, classes = [], [], []
    for cy, cx, r, c in cells:
        m = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        img[m] = (200, 120, 90) if c == 0 else (90, 200, 120)
        masks.append(m)
        boxes.append([cx - r, cy - r, cx + r + 1, cy + r + 1])
        classes.append(c)
    inst = Instances((h, w), gt_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32)),
                     gt_classes=torch.tensor(classes, dtype=torch.int64),
                     gt_masks=BitMasks(torch.from_numpy(np.stack(masks))))
    return {"image": torch.from_numpy(img[:, :, ::-1].copy()).permute(2, 0, 1).float(), "height": h, "width": w,
            "instances": inst}


@pytest.mark.parametrize("cascade", [True, False])
def test_loss_names_and_eval_outputs(cascade):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = build_model(tiny_cfg(cascade))
    model.train()
    losses = model([synthetic_input()])
    if cascade:
        expected = {"loss_rpn_cls", "loss_rpn_loc", "loss_mask"} | {
            f"{n}_stage{k}" for n in ("loss_cls", "loss_box_reg") for k in range(3)}
    else:
        expected = {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask"}
    assert set(losses) == expected
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        out = model([synthetic_input(), synthetic_input(96, 120)])
    assert len(out) == 2
    inst = out[1]["instances"]
    assert inst.image_size == (96, 120)
    assert inst.pred_masks.shape[1:] == (96, 120) and inst.pred_masks.dtype == torch.bool
    assert inst.pred_boxes.tensor.shape[1] == 4 and inst.pred_classes.dtype == torch.int64


def test_losses_decrease_over_sgd_steps():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = build_model(tiny_cfg(True))
    model.train()
    batch = [synthetic_input()]
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.02, momentum=0.9)
    totals = []
    for _ in range(20):
        losses = model(batch)
        total = sum(losses.values())
        assert torch.isfinite(total), losses
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)
        opt.step()
        totals.append(float(total.detach()))
    assert np.mean(totals[-5:]) < 0.7 * np.mean(totals[:3]), totals


def test_empty_ground_truth_trains():
    torch.manual_seed(0)
    model = build_model(tiny_cfg(True))
    model.train()
    x = synthetic_input()
    x["instances"] = Instances((128, 160), gt_boxes=Boxes(torch.zeros(0, 4)), gt_classes=torch.zeros(0, dtype=torch.int64),
                               gt_masks=BitMasks(torch.zeros(0, 128, 160, dtype=torch.bool)))
    losses = model([x])
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total)
