"""Random foreground/background subsampling as detectron2's ``subsample_labels``."""
from __future__ import annotations

import torch


def subsample_labels(labels: torch.Tensor, num_samples: int, positive_fraction: float, bg_label: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of at most ``num_samples * positive_fraction`` positives and the rest negatives.

    ``labels``: -1 ignore, ``bg_label`` background, anything else foreground.
    """
    positive = torch.nonzero((labels != -1) & (labels != bg_label), as_tuple=True)[0]
    negative = torch.nonzero(labels == bg_label, as_tuple=True)[0]
    num_pos = int(num_samples * positive_fraction)
    num_pos = min(positive.numel(), num_pos)
    num_neg = num_samples - num_pos
    num_neg = min(negative.numel(), num_neg)
    perm1 = torch.randperm(positive.numel(), device=positive.device)[:num_pos]
    perm2 = torch.randperm(negative.numel(), device=negative.device)[:num_neg]
    return positive[perm1], negative[perm2]
