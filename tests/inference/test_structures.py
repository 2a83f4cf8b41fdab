"""Structures: Boxes/Instances basics and detectron2's mask pasting (hand case + reference)."""
import numpy as np
import torch
import torch.nn.functional as F

from inference.structures import (
    BitMasks,
    Boxes,
    ImageList,
    Instances,
    masks_to_rle,
    paste_masks_in_image,
    rle_to_masks,
)


def _reference_paste(masks, boxes, h, w, threshold=0.5):
    """detectron2's CPU path: one mask at a time over its box window."""
    out = torch.zeros(len(masks), h, w, dtype=torch.bool)
    for i in range(len(masks)):
        b = boxes[i : i + 1]
        x0_int, y0_int = torch.clamp(b.min(dim=0).values.floor()[:2] - 1, min=0).to(dtype=torch.int32)
        x1_int = torch.clamp(b[:, 2].max().ceil() + 1, max=w).to(dtype=torch.int32)
        y1_int = torch.clamp(b[:, 3].max().ceil() + 1, max=h).to(dtype=torch.int32)
        x0, y0, x1, y1 = torch.split(b, 1, dim=1)
        img_y = torch.arange(y0_int, y1_int, dtype=torch.float32) + 0.5
        img_x = torch.arange(x0_int, x1_int, dtype=torch.float32) + 0.5
        img_y = (img_y - y0) / (y1 - y0) * 2 - 1
        img_x = (img_x - x0) / (x1 - x0) * 2 - 1
        gx = img_x[:, None, :].expand(1, img_y.size(1), img_x.size(1))
        gy = img_y[:, :, None].expand(1, img_y.size(1), img_x.size(1))
        grid = torch.stack([gx, gy], dim=3)
        m = F.grid_sample(masks[i : i + 1, None].float(), grid, align_corners=False)[:, 0]
        out[i, y0_int:y1_int, x0_int:x1_int] = m[0] >= threshold
    return out


def test_paste_hand_case():
    masks = torch.ones(1, 4, 4)
    boxes = torch.tensor([[2.0, 3.0, 6.0, 9.0]])
    out = paste_masks_in_image(masks, boxes, (12, 10))
    expected = torch.zeros(12, 10, dtype=torch.bool)
    expected[3:9, 2:6] = True
    assert torch.equal(out[0], expected)


def test_paste_half_mask_hand_case():
    masks = torch.zeros(1, 2, 2)
    masks[0, :, 0] = 1.0  # left half on
    out = paste_masks_in_image(masks, torch.tensor([[0.0, 0.0, 4.0, 4.0]]), (4, 4))
    # pixel centres 0.5, 1.5 map to mask x = -0.25, 0.25 -> 1.0 and 0.75; 2.5 -> 0.25 (< 0.5)
    assert out[0].numpy().astype(int).tolist() == [[1, 1, 0, 0]] * 4


def test_paste_matches_detectron2_reference():
    g = torch.Generator().manual_seed(0)
    n, h, w = 30, 70, 90
    masks = torch.rand(n, 28, 28, generator=g)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w, h])
    wh = torch.rand(n, 2, generator=g) * 40 + 0.5
    boxes = torch.cat([xy, xy + wh], dim=1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 0.1)
    assert torch.equal(paste_masks_in_image(masks, boxes, (h, w)), _reference_paste(masks, boxes, h, w))
    assert paste_masks_in_image(masks[:0], boxes[:0], (h, w)).shape == (0, h, w)


def test_boxes_instances_imagelist():
    b = Boxes(torch.tensor([[-5.0, 2, 30, 40], [3, 3, 3, 10]]))
    b.clip((20, 25))
    assert b.tensor.tolist() == [[0, 2, 25, 20], [3, 3, 3, 10]]
    assert b.nonempty().tolist() == [True, False]
    inst = Instances((20, 25), boxes=b, scores=torch.tensor([0.9, 0.1]))
    kept = inst[inst.scores > 0.5]
    assert len(kept) == 1 and kept.boxes.tensor.shape == (1, 4)
    cat = Instances.cat([inst, kept])
    assert len(cat) == 3
    il = ImageList.from_tensors([torch.ones(3, 10, 20), torch.ones(3, 33, 5)], size_divisibility=32)
    assert il.tensor.shape == (2, 3, 64, 32) and il.image_sizes == [(10, 20), (33, 5)]
    assert il.tensor[0, :, 10:].abs().sum() == 0


def test_bitmask_crop_and_resize_and_rle():
    m = torch.zeros(1, 20, 20, dtype=torch.bool)
    m[0, 5:15, 5:10] = True
    crop = BitMasks(m).crop_and_resize(torch.tensor([[5.0, 5.0, 15.0, 15.0]]), 4)
    assert crop[0].int().tolist() == [[1, 1, 0, 0]] * 4
    rles = masks_to_rle(m.numpy())
    assert isinstance(rles[0]["counts"], str)
    assert np.array_equal(rle_to_masks(rles), m.numpy())


def test_indexed_bitmasks_crop_like_the_copied_masks():
    from inference.structures import IndexedBitMasks

    g = torch.Generator().manual_seed(0)
    masks = BitMasks(torch.rand(5, 60, 80, generator=g) > 0.5)
    index = torch.randint(0, 5, (40,), generator=g)
    boxes = torch.rand(40, 4, generator=g) * 40
    boxes[:, 2:] += boxes[:, :2] + 1
    expected = BitMasks(masks.tensor[index]).crop_and_resize(boxes, 28)
    indexed = IndexedBitMasks(masks, index)
    assert len(indexed) == 40
    assert torch.equal(indexed.crop_and_resize(boxes, 28), expected)
    picked = torch.tensor([3, 7, 11])
    assert torch.equal(indexed[picked].crop_and_resize(boxes[picked], 28), expected[picked])
    chosen = torch.zeros(40, dtype=torch.bool)
    chosen[5:9] = True
    assert torch.equal(indexed[chosen].crop_and_resize(boxes[chosen], 28), expected[chosen])
    assert len(indexed[2]) == 1 and len(indexed[-1]) == 1
    joined = IndexedBitMasks.cat([indexed[:10], indexed[10:]])
    assert torch.equal(joined.crop_and_resize(boxes, 28), expected)
    other = IndexedBitMasks(BitMasks(masks.tensor.clone()), index[:5])
    mixed = IndexedBitMasks.cat([indexed[:10], other])  # different sources: copied into one BitMasks
    assert torch.equal(mixed.tensor, torch.cat([masks.tensor[index[:10]], masks.tensor[index[:5]]]))
    assert indexed[:0].crop_and_resize(boxes[:0], 28).shape == (0, 28, 28)
