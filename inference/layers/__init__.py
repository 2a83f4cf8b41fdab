"""Building blocks with detectron2's names and behaviour, split as detectron2 splits ``layers/``: norms
(``batch_norm``), ``Conv2d``/``cross_entropy`` (``wrappers``), the NNPACK convolution (``nnpack``), losses,
``ShapeSpec``, Caffe2 weight inits, ROIAlign and batched NMS for CPU, and the threads those use."""
from .batch_norm import BatchNorm2d, FrozenBatchNorm2d, fold_frozen_bn, get_norm
from .losses import smooth_l1_loss
from .nms import batched_nms
from .nnpack import NNPACKConv2d, nnpack_available, nnpack_is_faster_here
from .roi_align import ThreadedROIAlign, roi_align_channels_last
from .shape_spec import ShapeSpec
from .threads import cpu_op_threads, executor, set_threaded_ops, threaded_ops_enabled
from .weight_init import c2_msra_fill, c2_xavier_fill
from .wrappers import Conv2d, cross_entropy

__all__ = [
    "BatchNorm2d", "Conv2d", "FrozenBatchNorm2d", "NNPACKConv2d", "ShapeSpec", "ThreadedROIAlign", "batched_nms",
    "c2_msra_fill", "c2_xavier_fill", "cpu_op_threads", "cross_entropy", "executor", "fold_frozen_bn", "get_norm",
    "nnpack_available", "nnpack_is_faster_here", "roi_align_channels_last", "set_threaded_ops", "smooth_l1_loss",
    "threaded_ops_enabled",
]
