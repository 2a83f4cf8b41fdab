"""Hand-computed unit cases: anchors, Box2BoxTransform, FrozenBN, BN folding, pooler levels, matcher."""
import math
from pathlib import Path

import pytest
import torch

import inference
from inference.modeling.box_regression import Box2BoxTransform
from inference.modeling.layers import Conv2d, FrozenBatchNorm2d, fold_frozen_bn, nnpack_available
from inference.modeling.matcher import Matcher
from inference.modeling.poolers import assign_boxes_to_levels
from inference.modeling.proposal_generator.anchor_generator import (
    DefaultAnchorGenerator,
    generate_cell_anchors,
)
from inference.structures import Boxes

# a small trained Cascade Mask R-CNN committed with the repository
DEMO_MODEL = Path(inference.__file__).resolve().parent / "assets" / "demo_model"


def test_cell_anchors_by_hand():
    a = generate_cell_anchors([32], [0.5, 1.0, 2.0])
    w05 = math.sqrt(32 * 32 / 0.5)  # 45.25
    h05 = 0.5 * w05  # 22.63
    expected = torch.tensor([
        [-w05 / 2, -h05 / 2, w05 / 2, h05 / 2],
        [-16.0, -16.0, 16.0, 16.0],
        [-h05 / 2, -w05 / 2, h05 / 2, w05 / 2],
    ])
    torch.testing.assert_close(a, expected)


def test_grid_anchors_order_and_offset():
    gen = DefaultAnchorGenerator(sizes=[[8], [16]], aspect_ratios=[[1.0]], strides=[4, 8], offset=0.5)
    f1 = torch.zeros(1, 1, 2, 3)
    f2 = torch.zeros(1, 1, 1, 2)
    a1, a2 = gen([f1, f2])
    # level 1: centres at (2 + 4x, 2 + 4y), row-major over (y, x), size 8
    centres = [(2, 2), (6, 2), (10, 2), (2, 6), (6, 6), (10, 6)]
    torch.testing.assert_close(a1, torch.tensor([[cx - 4, cy - 4, cx + 4, cy + 4] for cx, cy in centres], dtype=torch.float32))
    torch.testing.assert_close(a2, torch.tensor([[-4.0, -4, 12, 12], [4, -4, 20, 12]]))
    assert gen.num_cell_anchors == [1, 1]


def test_anchor_levels_broadcast_and_count():
    gen = DefaultAnchorGenerator(sizes=[[32, 64]], aspect_ratios=[[0.5, 1.0, 2.0]], strides=[4, 8])
    a1, a2 = gen([torch.zeros(1, 1, 5, 7), torch.zeros(1, 1, 3, 4)])
    assert a1.shape == (5 * 7 * 6, 4) and a2.shape == (3 * 4 * 6, 4)
    # first cell, offset 0: size 32 ratio 0.5 anchor centred at the origin
    assert torch.allclose(a1[0], torch.tensor([-22.6274, -11.3137, 22.6274, 11.3137]), atol=1e-3)


def test_box_transform_round_trip_and_known_values():
    t = Box2BoxTransform(weights=(10.0, 10.0, 5.0, 5.0))
    src = torch.tensor([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 15.0, 9.0]])
    dst = torch.tensor([[1.0, 2.0, 13.0, 22.0], [4.0, 6.0, 20.0, 10.0]])
    d = t.get_deltas(src, dst)
    # first box: centre (5, 10) -> (7, 12), w 10 -> 12, h 20 -> 20
    torch.testing.assert_close(d[0], torch.tensor([10 * 2 / 10, 10 * 2 / 20, 5 * math.log(1.2), 0.0]))
    torch.testing.assert_close(t.apply_deltas(d, src), dst, atol=1e-4, rtol=1e-5)
    # class-specific layout: k boxes per row
    d2 = torch.cat([d, torch.zeros_like(d)], dim=1)
    out = t.apply_deltas(d2, src)
    torch.testing.assert_close(out[:, :4], dst, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(out[:, 4:], src)


def test_box_transform_clamps_scale():
    t = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0))
    out = t.apply_deltas(torch.tensor([[0.0, 0.0, 100.0, 100.0]]), torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
    assert torch.isfinite(out).all() and out[0, 2] - out[0, 0] == pytest.approx(1000 / 16, rel=1e-4)


def test_frozen_bn_equals_bn_eval():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(5)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    bn.eval()
    frozen = FrozenBatchNorm2d.convert_frozen_batchnorm(torch.nn.Sequential(bn))[0]
    assert isinstance(frozen, FrozenBatchNorm2d)
    x = torch.randn(2, 5, 4, 4)
    torch.testing.assert_close(frozen(x), bn(x), atol=1e-5, rtol=1e-5)
    assert set(frozen.state_dict()) == {"weight", "bias", "running_mean", "running_var"}


def test_fold_frozen_bn_keeps_outputs():
    torch.manual_seed(0)
    conv = Conv2d(3, 4, kernel_size=3, padding=1, bias=False, norm=FrozenBatchNorm2d(4))
    conv.norm.running_mean.uniform_(-1, 1)
    conv.norm.running_var.uniform_(0.5, 2)
    conv.norm.weight.uniform_(0.5, 1.5)
    conv.norm.bias.uniform_(-1, 1)
    x = torch.randn(1, 3, 8, 8)
    ref = conv(x)
    assert fold_frozen_bn(conv) == 1
    assert conv.norm is None
    torch.testing.assert_close(conv(x), ref, atol=1e-5, rtol=1e-5)


def test_pooler_level_assignment_canonical():
    boxes = Boxes(torch.tensor([[0, 0, 224, 224], [0, 0, 112, 112], [0, 0, 448, 448], [0, 0, 10, 10], [0, 0, 2000, 2000.0]]))
    lv = assign_boxes_to_levels([boxes], min_level=2, max_level=5, canonical_box_size=224, canonical_level=4)
    assert lv.tolist() == [2, 1, 3, 0, 3]


def test_matcher_low_quality_and_labels():
    m = Matcher([0.3, 0.7], [0, -1, 1], allow_low_quality_matches=True)
    iou = torch.tensor([[0.1, 0.5, 0.8, 0.2], [0.25, 0.1, 0.0, 0.2]])
    matches, labels = m(iou)
    assert matches.tolist() == [1, 0, 0, 0]
    # column 0: best 0.25 < 0.3 but it is gt 1's best match -> positive
    assert labels.tolist() == [1, -1, 1, 0]


def test_gn_norms_and_conv_box_head_build_and_run():
    from inference.config import get_cfg
    from inference.modeling import build_model

    cfg = get_cfg()
    cfg.merge_from_list([
        "MODEL.MASK_ON", "True", "MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone", "MODEL.RESNETS.NORM", "GN",
        "MODEL.RESNETS.DEPTH", "101", "MODEL.RESNETS.OUT_FEATURES", "[res2, res3, res4, res5]",
        "MODEL.RESNETS.STEM_OUT_CHANNELS", "32", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
        "MODEL.RESNETS.WIDTH_PER_GROUP", "8", "MODEL.RESNETS.NUM_GROUPS", "4", "MODEL.RESNETS.STRIDE_IN_1X1", "False",
        "MODEL.FPN.IN_FEATURES", "[res2, res3, res4, res5]", "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.FPN.NORM", "GN",
        "MODEL.RPN.IN_FEATURES", "[p2, p3, p4, p5, p6]", "MODEL.ANCHOR_GENERATOR.SIZES", "[[16], [32], [64], [128], [256]]",
        "MODEL.ROI_HEADS.IN_FEATURES", "[p2, p3, p4, p5]", "MODEL.ROI_HEADS.NAME", "StandardROIHeads",
        "MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead", "MODEL.ROI_BOX_HEAD.NUM_CONV", "4", "MODEL.ROI_BOX_HEAD.NUM_FC", "1",
        "MODEL.ROI_BOX_HEAD.CONV_DIM", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "64", "MODEL.ROI_BOX_HEAD.NORM", "GN",
        "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", "7", "MODEL.ROI_MASK_HEAD.NUM_CONV", "2", "MODEL.ROI_MASK_HEAD.CONV_DIM", "32",
        "MODEL.ROI_MASK_HEAD.NORM", "GN", "MODEL.RPN.POST_NMS_TOPK_TEST", "50", "MODEL.BACKBONE.FREEZE_AT", "2",
    ])
    model = build_model(cfg).eval()
    sd = model.state_dict()
    assert "backbone.bottom_up.res4.22.conv3.norm.weight" in sd  # depth 101
    assert sd["backbone.bottom_up.res2.0.conv2.weight"].shape == (32, 8, 3, 3)  # 4 groups x 8
    assert "roi_heads.box_head.conv4.norm.weight" in sd and "backbone.fpn_lateral3.norm.bias" in sd
    assert "backbone.fpn_lateral3.bias" not in sd
    # FREEZE_AT 2: stem and res2 frozen, res3 trainable
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".res2." in n or ".stem." in n)
    assert all(p.requires_grad for n, p in model.named_parameters() if ".res3." in n)
    with torch.no_grad():
        out = model([{"image": torch.rand(3, 64, 96) * 255, "height": 64, "width": 96}])
    assert out[0]["instances"].image_size == (64, 96)


def _random_rois(n: int, batch: int, size: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 2 + 1
    batch_index = torch.randint(0, batch, (n, 1), generator=g).float()
    return torch.cat([batch_index, xy, xy + wh], dim=1)


def test_threaded_roi_align_equals_torchvision_forward_and_backward():
    from torchvision.ops import roi_align

    from inference.modeling.poolers import ThreadedROIAlign

    x = torch.randn(2, 8, 40, 50, requires_grad=True)
    rois = _random_rois(300, 2, 60)
    expected = roi_align(x, rois, (7, 7), 0.5, 0, True)
    grad = torch.randn_like(expected)
    (expected_grad,) = torch.autograd.grad(expected, x, grad)
    got = ThreadedROIAlign.apply(x, rois, (7, 7), 0.5, 0, True, 2)
    (got_grad,) = torch.autograd.grad(got, x, grad)
    assert torch.equal(got, expected)  # per-ROI outputs are computed exactly as torchvision computes them
    assert torch.allclose(got_grad, expected_grad, atol=1e-5)  # chunk gradients summed in another order
    x64 = torch.randn(2, 2, 16, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ThreadedROIAlign.apply(t, _random_rois(70, 2, 20).double(), (3, 3), 0.5,
                                                                     2, True, 2), (x64,))


def test_pooler_uses_threads_only_for_training_with_many_rois():
    from inference.modeling.poolers import PARALLEL_MIN_ROIS, ROIPooler

    x = torch.randn(1, 4, 8, 8, requires_grad=True)
    assert ROIPooler._num_training_workers(x, PARALLEL_MIN_ROIS) == min(torch.get_num_threads(), 2)
    assert ROIPooler._num_training_workers(x, PARALLEL_MIN_ROIS - 1) == 1
    assert ROIPooler._num_training_workers(x.detach(), 1000) == 1
    with torch.no_grad():
        assert ROIPooler._num_training_workers(x, 1000) == 1



@pytest.mark.parametrize("aligned,sampling_ratio,output_size,scale", [(True, 0, (7, 7), 0.25), (True, 0, (14, 14), 0.5),
                                                                      (False, 2, (7, 7), 0.5), (False, 0, (3, 5), 1.0)])
def test_roi_align_channels_last_equals_torchvision(aligned, sampling_ratio, output_size, scale):
    from torchvision.ops import roi_align

    from inference.modeling.separable_roi_align import roi_align_channels_last

    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 16, 23, 31, generator=g)
    n = 700  # more than one chunk of ROIs
    size = torch.tensor([31.0, 23.0]) / scale
    centre = torch.rand(n, 2, generator=g) * size * 1.4 - 0.2 * size  # some boxes partly or wholly outside
    half = (torch.rand(n, 2, generator=g) * 0.7 - 0.05) * size / 2  # some empty or inverted boxes
    rois = torch.cat([torch.randint(0, 2, (n, 1), generator=g).float(), centre - half, centre + half], dim=1)
    expected = roi_align(x, rois, output_size, scale, sampling_ratio, aligned)
    for features in (x.contiguous(memory_format=torch.channels_last), x):
        got = roi_align_channels_last(features, rois, output_size, scale, sampling_ratio, aligned)
        assert got.shape == expected.shape
        assert got.permute(0, 2, 3, 1).is_contiguous()
        assert torch.allclose(got, expected, atol=2e-6), (got - expected).abs().max()
    assert expected.abs().sum() > 0
    empty = roi_align_channels_last(x, rois[:0], output_size, scale, sampling_ratio, aligned)
    assert empty.shape == (0, 16) + output_size


def test_pooler_pools_channels_last_only_in_cpu_inference():
    from inference.modeling.poolers import ROIPooler

    pooler = ROIPooler(output_size=7, scales=[1 / 4, 1 / 8], sampling_ratio=0)
    g = torch.Generator().manual_seed(5)
    features = [torch.randn(1, 8, 32, 40, generator=g), torch.randn(1, 8, 16, 20, generator=g)]
    boxes = [Boxes(_random_rois(90, 1, 150, seed=2)[:, 1:] * torch.tensor([1.0, 1.0, 1.4, 1.4]))]
    with torch.no_grad():
        expected = pooler(features, boxes)
        pooler.channels_last = True
        assert pooler.pools_channels_last(torch.device("cpu"))
        got = pooler([f.contiguous(memory_format=torch.channels_last) for f in features], boxes)
    assert expected.is_contiguous() and got.permute(0, 2, 3, 1).is_contiguous()
    assert torch.allclose(got, expected, atol=2e-6)
    assert not pooler.pools_channels_last(torch.device("cpu"))  # autograd on: torchvision's kernel (training)
    assert pooler(features, boxes).is_contiguous()


@pytest.mark.parametrize("c_in,c_out,batch,size", [(128, 32, 40, 14), (256, 256, 16, 14), (64, 8, 70, 14),
                                                   (192, 8, 20, 16), (128, 8, 2, 64)])
def test_nnpack_conv_matches_direct_convolution_with_gradients(c_in, c_out, batch, size, monkeypatch):
    from inference.modeling import layers

    calls = []
    original = layers._nnpack_conv
    monkeypatch.setattr(layers, "_nnpack_conv", lambda *a: calls.append(1) or original(*a))
    torch.manual_seed(0)
    # no activation: float rounding near zero would flip some ReLU gates and make the gradients differ
    # by whole elements (seen: one flip in 800k outputs changed the bias gradient by 1e-2 relative)
    conv = Conv2d(c_in, c_out, 3, padding=1)
    x = torch.randn(batch, c_in, size, size, requires_grad=True)
    y = conv(x)
    grad = torch.randn_like(y)
    expected = torch.autograd.grad(y, [x, conv.weight, conv.bias], grad)
    conv.use_nnpack = True
    y_nnpack = conv(x)
    got = torch.autograd.grad(y_nnpack, [x, conv.weight, conv.bias], grad)
    # forward and input gradient through NNPACK; the weight gradient too on maps up to 16x16 (a torch
    # build without NNPACK falls back to the direct convolution: no call, same results)
    assert len(calls) == ((3 if size <= 16 else 2) if nnpack_available() else 0)
    assert torch.allclose(y_nnpack, y, atol=1e-4, rtol=1e-4)
    for e, g in zip(expected, got):
        assert torch.allclose(g, e, atol=1e-4 * float(e.abs().max()), rtol=1e-4)
    conv.activation = torch.relu  # the activation follows the NNPACK convolution
    with torch.no_grad():
        assert torch.equal(conv(x), torch.relu(y_nnpack))


def test_nnpack_is_used_only_where_it_applies():
    def applies(conv: Conv2d, x: torch.Tensor) -> bool:
        conv.use_nnpack = True
        return conv.nnpack_applies(x)

    big = torch.randn(1, 128, 96, 96)
    assert applies(Conv2d(128, 128, 3, padding=1), big) is nnpack_available()
    assert not Conv2d(128, 128, 3, padding=1).nnpack_applies(big)  # off unless asked for
    assert not applies(Conv2d(128, 128, 3, stride=2, padding=1), big)
    assert not applies(Conv2d(128, 128, 1), big)  # 1x1: no Winograd gain
    assert not applies(Conv2d(128, 128, 3, padding=1), big.double())
    assert not applies(Conv2d(32, 32, 3, padding=1), torch.randn(1, 32, 200, 200))  # too few channels
    assert not applies(Conv2d(512, 512, 3, padding=1), torch.randn(1, 512, 64, 64))  # too many
    assert not applies(Conv2d(128, 128, 3, padding=1), torch.randn(1, 128, 20, 20))  # too small an input
    strided = Conv2d(128, 8, 3, stride=2, padding=1)
    strided.use_nnpack = True
    assert strided(big).shape == (1, 8, 48, 48)  # falls back to the direct convolution



@pytest.mark.parametrize("capability,expected", [("AVX2", True), ("AVX512", False), ("DEFAULT", False)])
def test_nnpack_default_follows_the_cpu(capability, expected, monkeypatch):
    from inference import Predictor
    from inference.modeling import layers

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert layers.nnpack_is_faster_here() is (expected and nnpack_available())
    d = DEMO_MODEL
    predictor = Predictor(d / "config.yaml", d / "model_final.pth")
    assert predictor.nnpack is layers.nnpack_is_faster_here()
    assert all(m.use_nnpack is predictor.nnpack for m in predictor.model.modules() if isinstance(m, Conv2d))
    assert Predictor(d / "config.yaml", d / "model_final.pth", nnpack=True).nnpack  # asked for: on anywhere

@pytest.mark.parametrize("channels_last", [True, False])
def test_mask_head_deconv_relu_backward_as_matrix_products_matches_conv_transpose(channels_last):
    import torch.nn.functional as F

    from inference.modeling.roi_heads.mask_head import Deconv2x2ReLU

    torch.manual_seed(0)
    x = torch.randn(6, 16, 14, 14)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    weight = torch.randn(16, 12, 2, 2, requires_grad=True)
    bias = torch.randn(12, requires_grad=True)
    expected_out = F.relu(F.conv_transpose2d(x, weight, bias, stride=2))
    grad = torch.randn_like(expected_out)
    expected = torch.autograd.grad(expected_out, [x, weight, bias], grad)
    out = Deconv2x2ReLU.apply(x, weight, bias)
    got = torch.autograd.grad(out, [x, weight, bias], grad)
    assert torch.equal(out, expected_out)
    for e, g in zip(expected, got):
        assert torch.allclose(g, e, atol=1e-4, rtol=1e-4)
    x64 = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    w64 = torch.randn(3, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    b64 = torch.randn(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Deconv2x2ReLU.apply, (x64, w64, b64))
