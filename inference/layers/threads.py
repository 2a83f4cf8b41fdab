"""Threads for torchvision's single-threaded CPU kernels (roi_align forward and backward, nms).

The inputs of these kernels split into independent parts (ROIs, classes) whose results are exact when
put together, so they run on a process-wide pool of up to ``torch.get_num_threads()`` threads. Whether
they may is a process-wide switch, like torch's own thread count: :func:`set_threaded_ops` (set by
``inference.engine.execution.apply_execution_policy``; off by default).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

_pool_lock = threading.Lock()
_pool_executor: ThreadPoolExecutor | None = None
_enabled = False


def set_threaded_ops(enabled: bool) -> None:
    """Let (True) or stop (False) the CPU kernels of ``roi_align`` and ``nms`` running on several threads."""
    global _enabled
    _enabled = bool(enabled)


def threaded_ops_enabled() -> bool:
    """Whether the CPU kernels may run on several threads (:func:`set_threaded_ops`)."""
    return _enabled


def cpu_op_threads(items: int, *, min_items_per_thread: int, device: torch.device) -> int:
    """Threads to split ``items`` independent pieces of CPU work over: 1 when threaded ops are off, off the
    CPU or in TorchScript, else up to torch's thread count with at least ``min_items_per_thread`` each."""
    if not _enabled or device.type != "cpu" or torch.jit.is_scripting():
        return 1
    return max(1, min(torch.get_num_threads(), items // min_items_per_thread))


def _forget_executor() -> None:  # a forked child has none of the parent's threads
    global _pool_executor, _pool_lock
    _pool_executor = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_executor)


def executor(workers: int) -> ThreadPoolExecutor:
    """The process-wide pool, with at least ``workers`` threads."""
    global _pool_executor
    with _pool_lock:
        if _pool_executor is None or _pool_executor._max_workers < workers:
            _pool_executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cpu_ops")
        return _pool_executor
