"""Norm layers with detectron2's state-dict names: FrozenBatchNorm2d, a BatchNorm2d that also loads FrozenBN
checkpoints, ``get_norm`` (config name -> module), and folding FrozenBN into the preceding convolution."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .wrappers import Conv2d


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


class BatchNorm2d(nn.BatchNorm2d):
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
        return BatchNorm2d(out_channels)
    if norm == "FrozenBN":
        return FrozenBatchNorm2d(out_channels)
    if norm == "GN":
        return nn.GroupNorm(32, out_channels)
    raise ValueError(f"unsupported norm {norm!r} (expected '', BN, SyncBN, FrozenBN or GN)")


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
