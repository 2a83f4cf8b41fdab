"""Matcher: assign each prediction (column) to its best ground truth (row) with IoU-threshold labels."""
from __future__ import annotations

import torch


class Matcher:
    """``thresholds`` [t1, ..] split IoU into intervals labelled by ``labels`` (1 fg, 0 bg, -1 ignore)."""

    def __init__(self, thresholds: list[float], labels: list[int], allow_low_quality_matches: bool = False):
        thresholds = list(thresholds)
        if thresholds[0] < 0:
            raise ValueError("thresholds must be >= 0")
        thresholds.insert(0, -float("inf"))
        thresholds.append(float("inf"))
        if not all(lo <= hi for lo, hi in zip(thresholds[:-1], thresholds[1:])):
            raise ValueError(f"thresholds must be sorted: {thresholds}")
        if not all(label in (-1, 0, 1) for label in labels) or len(labels) != len(thresholds) - 1:
            raise ValueError(f"labels {labels} do not fit thresholds {thresholds}")
        self.thresholds = thresholds
        self.labels = list(labels)
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, match_quality_matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tensor[M gt, N pred] -> (matches int64[N], match_labels int8[N])."""
        assert match_quality_matrix.dim() == 2
        if match_quality_matrix.numel() == 0:
            default_matches = match_quality_matrix.new_full((match_quality_matrix.size(1),), 0, dtype=torch.int64)
            default_labels = match_quality_matrix.new_full((match_quality_matrix.size(1),), self.labels[0], dtype=torch.int8)
            return default_matches, default_labels
        matched_vals, matches = match_quality_matrix.max(dim=0)
        match_labels = matches.new_full(matches.size(), 1, dtype=torch.int8)
        for label, low, high in zip(self.labels, self.thresholds[:-1], self.thresholds[1:]):
            low_high = (matched_vals >= low) & (matched_vals < high)
            match_labels[low_high] = label
        if self.allow_low_quality_matches:
            highest_quality_foreach_gt, _ = match_quality_matrix.max(dim=1)
            _, pred_inds = torch.nonzero(match_quality_matrix == highest_quality_foreach_gt[:, None], as_tuple=True)
            match_labels[pred_inds] = 1
        return matches, match_labels
