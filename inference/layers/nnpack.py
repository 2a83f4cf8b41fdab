"""NNPACK convolutions on CPU: whether this machine has them and should use them, and a stride-1 3x3
convolution (forward and backward) through NNPACK's fast algorithms."""
from __future__ import annotations

import functools

import torch


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
