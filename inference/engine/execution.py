"""How a model runs on a machine, chosen once and applied from outside the architecture.

The modules compute the same function whatever is chosen here (up to float rounding); these choices only
make them faster on some hardware. :class:`Predictor` and :class:`Trainer` apply a policy once, after the
model is built and loaded; nothing in ``modeling/`` decides it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..layers import Conv2d, nnpack_is_faster_here, set_threaded_ops


@dataclass(frozen=True)
class ExecutionPolicy:
    """The execution choices (all off: the plain torch path).

    channels_last: 4-D weights (backbone, RPN head, mask head) in ``torch.channels_last``, so their outputs
        are channels-last too (oneDNN's faster CPU kernels).
    nnpack: every ``layers.Conv2d`` may run through NNPACK on CPU where it is faster
        (``Conv2d.nnpack_applies``: 3x3, 64-256 channels, large inputs).
    separable_roi_align: ROI poolers pool channels-last features with ``layers.roi_align_channels_last``
        in CPU inference (vectorised over channels, all threads) instead of torchvision's kernel.
    threaded_ops: torchvision's single-threaded CPU kernels (roi_align forward and backward, per-class
        nms) split their independent parts over ``torch.get_num_threads()`` threads. Process-wide, like
        torch's thread count (``layers.set_threaded_ops``).
    """

    channels_last: bool = False
    nnpack: bool = False
    separable_roi_align: bool = False
    threaded_ops: bool = False

    @classmethod
    def for_inference(cls, device: str | torch.device) -> ExecutionPolicy:
        """What the Predictor uses by default: channels_last on every device; on CPU also the separable
        ROIAlign, the threaded kernels, and NNPACK where ``layers.nnpack_is_faster_here`` (AVX2 CPUs)."""
        cpu = torch.device(device).type == "cpu"
        return cls(channels_last=True, nnpack=cpu and nnpack_is_faster_here(), separable_roi_align=cpu,
                   threaded_ops=cpu)

    @classmethod
    def for_training(cls, device: str | torch.device) -> ExecutionPolicy:
        """What the Trainer uses by default: on CPU channels_last, the threaded kernels and NNPACK where it
        is faster; on other devices the plain path."""
        if torch.device(device).type != "cpu":
            return cls()
        return cls(channels_last=True, nnpack=nnpack_is_faster_here(), separable_roi_align=True, threaded_ops=True)


def apply_execution_policy(model: nn.Module, policy: ExecutionPolicy) -> nn.Module:
    """Set ``policy`` on ``model`` (any module; the detector's parts are found by type) and return it.

    Applying another policy later replaces this one. ``threaded_ops`` is process-wide.
    """
    from ..modeling.poolers import ROIPooler  # late: importing the engine does not load the model code

    model.to(memory_format=torch.channels_last if policy.channels_last else torch.contiguous_format)
    for module in model.modules():
        if isinstance(module, Conv2d):
            module.use_nnpack = policy.nnpack
        elif isinstance(module, ROIPooler):
            module.use_separable_roi_align = policy.separable_roi_align
    set_threaded_ops(policy.threaded_ops)
    return model
