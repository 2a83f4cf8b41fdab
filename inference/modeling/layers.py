"""Building blocks with detectron2's parameter names: Conv2d with norm/activation, FrozenBN, inits."""
from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters, stored as buffers.

    State-dict keys: ``weight``, ``bias``, ``running_mean``, ``running_var`` (no ``num_batches_tracked``).
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features) - eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        bias = self.bias - self.running_mean * scale
        scale = scale.reshape(1, -1, 1, 1)
        bias = bias.reshape(1, -1, 1, 1)
        out_dtype = x.dtype
        return x * scale.to(out_dtype) + bias.to(out_dtype)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        # a BatchNorm checkpoint carries num_batches_tracked; it means nothing to a frozen norm
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def __repr__(self) -> str:
        return f"FrozenBatchNorm2d(num_features={self.num_features}, eps={self.eps})"

    @classmethod
    def convert_frozen_batchnorm(cls, module: nn.Module) -> nn.Module:
        """Replace every BatchNorm in ``module`` by a FrozenBatchNorm2d with the same statistics."""
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            res = cls(module.num_features, module.eps)
            if module.affine:
                res.weight.data = module.weight.data.clone().detach()
                res.bias.data = module.bias.data.clone().detach()
            res.running_mean.data = module.running_mean.data
            res.running_var.data = module.running_var.data
            return res
        for name, child in module.named_children():
            new_child = cls.convert_frozen_batchnorm(child)
            if new_child is not child:
                module.add_module(name, new_child)
        return module


class _BNWithCompatLoad(nn.BatchNorm2d):
    """BatchNorm2d that also loads FrozenBN checkpoints (no ``num_batches_tracked``)."""

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        key = prefix + "num_batches_tracked"
        if key not in state_dict:
            state_dict[key] = torch.tensor(0, dtype=torch.long)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)


def get_norm(norm: str | Callable | None, out_channels: int) -> nn.Module | None:
    """"" -> None; "BN"/"SyncBN" -> BatchNorm2d; "FrozenBN"; "GN" -> GroupNorm(32, C)."""
    if norm is None or norm == "":
        return None
    if callable(norm):
        return norm(out_channels)
    if norm in ("BN", "SyncBN", "naiveSyncBN", "nnSyncBN"):
        return _BNWithCompatLoad(out_channels)
    if norm == "FrozenBN":
        return FrozenBatchNorm2d(out_channels)
    if norm == "GN":
        return nn.GroupNorm(32, out_channels)
    raise ValueError(f"unsupported norm {norm!r} (expected '', BN, SyncBN, FrozenBN or GN)")


@functools.cache
def nnpack_available() -> bool:
    """Whether this torch build can run NNPACK convolutions (x86-64 with AVX2, ARM with NEON). The
    check also initializes NNPACK, which ``torch._nnpack_spatial_convolution`` needs first."""
    try:
        return bool(torch._nnpack_available())
    except (AttributeError, RuntimeError):
        return False


def nnpack_is_faster_here() -> bool:
    """Whether NNPACK should be on by default on this CPU: where torch's kernels are AVX2 ones (AMD EPYC
    without AVX-512, where NNPACK's 3x3 convolutions measured 14 % faster for a whole cascade image and
    faster in training). Off where torch runs AVX-512 kernels: oneDNN's channels-last convolutions
    there beat NNPACK (AVX2 only) for a whole image (1.70 against 1.94 s for cascade80), and NNPACK's
    batched path is 2.6x slower (2 x 256 x 128 x 160 input: 280 against 107 ms). Unmeasured elsewhere
    (ARM), so off."""
    return nnpack_available() and torch.backends.cpu.get_cpu_capability() == "AVX2"


def _nnpack_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int) -> torch.Tensor:
    return torch._nnpack_spatial_convolution(x.contiguous(), weight.contiguous(), bias, [padding, padding])


class NNPACKConv2d(torch.autograd.Function):
    """A stride-1, dilation-1, ungrouped convolution on CPU through NNPACK's fast (Winograd/FFT)
    algorithms: 2-2.5x faster than oneDNN for 3x3 convolutions with many channels (the mask head's
    256-channel 14x14 ROI features). Backward: the input gradient is the same fast convolution with the
    flipped, transposed kernel; the weight gradient on maps up to ``NNPACK_MAX_KERNEL`` pixels a side
    is an NNPACK convolution too (input and output gradient with batch and channels swapped), on larger
    maps it comes from torch's own convolution backward.
    Results differ from the direct convolution by float rounding (~1e-6 relative)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        ctx.has_bias = bias is not None
        return _nnpack_conv(x, weight, bias, padding)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        x, weight = ctx.saved_tensors
        p = ctx.padding
        grad_output = grad_output.contiguous()
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            k = weight.shape[-1]
            flipped = weight.flip(2, 3).transpose(0, 1)
            grad_input = _nnpack_conv(grad_output, flipped, None, k - 1 - p)
        if ctx.needs_input_grad[1] and grad_output.shape[-1] <= NNPACK_MAX_KERNEL and grad_output.shape[-2] <= NNPACK_MAX_KERNEL:
            # small maps (ROI features): the weight gradient is itself a convolution, of the input with
            # batch and channels swapped by the output gradient as kernel, which NNPACK runs by FFT
            grad_weight = _nnpack_conv(x.transpose(0, 1), grad_output.transpose(0, 1), None, p).transpose(0, 1)
            if ctx.has_bias and ctx.needs_input_grad[2]:
                grad_bias = grad_output.sum(dim=(0, 2, 3))
        elif ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2]):
            _, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
                grad_output, x.contiguous(), weight, [weight.shape[0]] if ctx.has_bias else None, [1, 1], [p, p],
                [1, 1], False, [0, 0], 1, [False, bool(ctx.needs_input_grad[1]), bool(ctx.has_bias and ctx.needs_input_grad[2])])
        elif ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(dim=(0, 2, 3))
        return grad_input, grad_weight, grad_bias, None


# Where NNPACK beats oneDNN (measured on the 2-core AVX2 machines, benchmarks/bench_inference.py and
# bench_training_parity.py): 3x3 convolutions with 64-256 input channels and an input of at least
# NNPACK_MIN_ELEMENTS values (N * C * H * W): the FPN output and RPN convolutions on P2-P4, ResNet
# res2-res4 3x3 convolutions, the mask head on many ROIs (2-2.5x on 256 channels). Few channels, small
# maps, or 512 channels (res5) are slower through NNPACK.
NNPACK_IN_CHANNELS = (64, 256)
NNPACK_MIN_ELEMENTS = 800_000
# the largest kernel NNPACK's FFT path takes (16x16 tiles): output maps up to this size get their weight
# gradient from NNPACK too (2-2.5x faster than oneDNN's for the mask head's 14x14 ROI features)
NNPACK_MAX_KERNEL = 16


class Conv2d(nn.Conv2d):
    """nn.Conv2d followed by an optional ``norm`` submodule and ``activation`` (detectron2 naming).

    ``use_nnpack`` (off by default; set by ``GeneralizedRCNN.set_nnpack``): run through NNPACK on CPU when
    the convolution allows it (3x3, stride 1, no dilation or groups, float32) and is of a size where it is
    faster (``NNPACK_IN_CHANNELS``, ``NNPACK_MIN_ELEMENTS``)."""

    def __init__(self, *args, norm: nn.Module | None = None, activation: Callable | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation
        self.use_nnpack = False

    def nnpack_applies(self, x: torch.Tensor) -> bool:
        """Whether ``forward(x)`` runs through NNPACK."""
        return (self.use_nnpack and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
                and self.kernel_size == (3, 3) and self.stride == (1, 1) and self.dilation == (1, 1)
                and self.groups == 1 and self.padding_mode == "zeros" and self.padding == (1, 1)
                and NNPACK_IN_CHANNELS[0] <= x.shape[1] <= NNPACK_IN_CHANNELS[1]
                and x.numel() >= NNPACK_MIN_ELEMENTS
                and not torch.jit.is_scripting() and nnpack_available())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nnpack_applies(x):
            x = NNPACKConv2d.apply(x, self.weight, self.bias, self.padding[0])
        else:
            x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


def fold_frozen_bn(module: nn.Module) -> int:
    """Fold every ``Conv2d`` + ``FrozenBatchNorm2d`` pair into the convolution (inference only).

    The state-dict names of the loaded checkpoint are not needed afterwards: call this after loading.
    Returns the number of folded convolutions.
    """
    n = 0
    for m in module.modules():
        if isinstance(m, Conv2d) and isinstance(m.norm, FrozenBatchNorm2d):
            bn = m.norm
            scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
            shift = bn.bias - bn.running_mean * scale
            w = m.weight.detach() * scale.reshape(-1, 1, 1, 1)
            b = shift if m.bias is None else m.bias.detach() * scale + shift
            m.weight = nn.Parameter(w, requires_grad=False)
            m.bias = nn.Parameter(b.detach().clone(), requires_grad=False)
            m.norm = None
            n += 1
    return n


def c2_msra_fill(module: nn.Module) -> None:
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


def c2_xavier_fill(module: nn.Module) -> None:
    nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


def smooth_l1_loss(input: torch.Tensor, target: torch.Tensor, beta: float, reduction: str = "none") -> torch.Tensor:
    """fvcore's smooth L1: plain L1 when ``beta < 1e-5``."""
    if beta < 1e-5:
        loss = torch.abs(input - target)
    else:
        n = torch.abs(input - target)
        cond = n < beta
        loss = torch.where(cond, 0.5 * n**2 / beta, n - 0.5 * beta)
    if reduction == "mean":
        loss = loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


def cross_entropy(input: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
    """cross_entropy that returns 0 (connected to the graph) for empty inputs, as detectron2."""
    if target.numel() == 0 and kwargs.get("reduction", "mean") == "mean":
        return input.sum() * 0.0
    return F.cross_entropy(input, target, **kwargs)


class ShapeSpec:
    """Channels and stride of a feature map."""

    def __init__(self, channels: int | None = None, height: int | None = None, width: int | None = None, stride: int | None = None):
        self.channels, self.height, self.width, self.stride = channels, height, width, stride

    def __repr__(self) -> str:
        return f"ShapeSpec(channels={self.channels}, height={self.height}, width={self.width}, stride={self.stride})"


def log2_int(x: float) -> int:
    return int(round(math.log2(x)))
