"""batched_nms: torchvision's results, with the per-class path grouped by one sort (no per-class scans)."""
from __future__ import annotations

import torch
from torchvision.ops import batched_nms as _tv_batched_nms
from torchvision.ops import nms

from .threads import cpu_op_threads, executor


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each ``idxs`` group; indices of kept boxes sorted by decreasing score.

    Small inputs go to torchvision (coordinate-offset trick). Large ones run one ``nms`` per group,
    as torchvision's per-class path does, but find the groups with a single sort instead of one
    ``idxs == c`` scan per class (80 classes x 80,000 boxes at SCORE_THRESH_TEST 0), on several threads
    where threaded ops are on (``layers.set_threaded_ops``).
    """
    if boxes.numel() <= (4000 if boxes.device.type == "cpu" else 20000) or torch.jit.is_scripting():
        return _tv_batched_nms(boxes, scores, idxs, iou_threshold)
    order = torch.argsort(idxs, stable=True)
    counts = torch.bincount(idxs[order]).tolist()
    groups = [g for g in torch.split(order, counts) if g.numel()]

    def run(gs):
        return [g[nms(boxes.index_select(0, g), scores.index_select(0, g), iou_threshold)] for g in gs]

    workers = cpu_op_threads(len(groups), min_items_per_thread=1, device=boxes.device)
    if workers > 1 and not torch.is_grad_enabled():
        # torchvision's CPU nms is single-threaded: the groups are independent, so run them on
        # `workers` threads at once (cut at equal shares of the boxes; the result is the same)
        total, acc, bounds = sum(len(g) for g in groups), 0, [0]
        for i, g in enumerate(groups):
            acc += len(g)
            if acc * workers >= total * len(bounds) and len(bounds) < workers:
                bounds.append(i + 1)
        bounds.append(len(groups))
        parts = [groups[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        inference_mode = torch.is_inference_mode_enabled()

        def run_in(gs):
            with torch.inference_mode(inference_mode), torch.no_grad():
                return run(gs)

        futures = [executor(len(parts) - 1).submit(run_in, gs) for gs in parts[1:]]
        keeps = run(parts[0]) if parts else []
        for f in futures:
            keeps += f.result()
    else:
        keeps = run(groups)
    if not keeps:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    keep = torch.sort(torch.cat(keeps)).values
    return keep[scores[keep].sort(descending=True)[1]]
