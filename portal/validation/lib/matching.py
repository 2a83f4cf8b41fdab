"""Which detections become cells, and when two points are the same cell. Plain Python, no Django."""
from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from typing import Any


def canonical_sha256(payload: Any) -> str:
    """SHA-256 of ``payload`` as canonical JSON (sorted keys, no spaces, ``str`` for other types)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def distance_limit_px(um_per_px: float | None, um: float, fallback_px: float) -> float:
    """``um`` micrometres in pixels of an image, or ``fallback_px`` when its pixel size is unknown."""
    return um / um_per_px if um_per_px else fallback_px


def is_model_positive(class_name: str, score: float | None, *, target_class: str, score_threshold: float) -> bool:
    """A model call of the target class at or above the study's threshold (a missing score counts as 0)."""
    return class_name == target_class and (score if score is not None else 0.0) >= score_threshold


def is_candidate(*, design: str, score: float | None, positive: bool, candidate_threshold: float) -> bool:
    """Whole field: every detection at or above the candidate threshold; picked cells: the model's positives."""
    if design == "whole_field":
        return (score if score is not None else 0.0) >= candidate_threshold
    return positive


def subsample_indices(count: int, size: int | None, seed: int) -> list[int] | None:
    """Sorted indices of a seeded random subset of ``size`` out of ``count``; None when all are kept."""
    if not size or count <= size:
        return None
    return sorted(random.Random(seed).sample(range(count), size))


def first_within(points: Sequence[tuple[float, float]], x: float, y: float, limit: float) -> int | None:
    """Index of the first of ``points`` at most ``limit`` away from (x, y), or None."""
    return next((i for i, (px, py) in enumerate(points) if math.hypot(px - x, py - y) <= limit), None)


def any_closer(points: Sequence[tuple[float, float]], x: float, y: float, limit: float) -> bool:
    """Whether any of ``points`` lies strictly closer than ``limit`` to (x, y)."""
    return any(math.hypot(px - x, py - y) < limit for px, py in points)
