"""Train/val/test split with a fixed seed; no patient in two splits when patient ids are given."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .coco import CocoDataset

DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def split_records(records: list[dict], fractions: Mapping[str, float] = DEFAULT_FRACTIONS, seed: int = 0,
                  group_key: str = "patient_id") -> dict[str, list[dict]]:
    """Split ``records`` into named parts of about ``fractions`` of the images.

    Records sharing a non-empty ``record[group_key]`` (a patient id) always land in the same part; a
    record without one is its own group. Groups are shuffled with ``seed`` (after sorting, so the
    result does not depend on the input order) and each goes to the part furthest below its target
    image count, largest groups first. The same records, fractions and seed give the same split.
    """
    names = list(fractions)
    total = float(sum(fractions.values()))
    if total <= 0 or any(v < 0 for v in fractions.values()):
        raise ValueError(f"fractions must be non-negative and not all zero: {dict(fractions)}")
    groups: dict[str, list[dict]] = {}
    for r in records:
        key = r.get(group_key)
        key = f"p:{key}" if key not in (None, "") else f"i:{r['image_id']}"
        groups.setdefault(key, []).append(r)
    keys = sorted(groups)
    rng = np.random.default_rng(seed)
    order = [keys[i] for i in rng.permutation(len(keys))]
    # stable sort by size (largest first) keeps the seeded order among equal sizes
    order.sort(key=lambda k: -len(groups[k]))
    n = len(records)
    target = {name: fractions[name] / total * n for name in names}
    parts: dict[str, list[dict]] = {name: [] for name in names}
    for k in order:
        # the part with the largest remaining deficit relative to its target
        name = max(names, key=lambda nm: (target[nm] - len(parts[nm])) / max(target[nm], 1e-9) if target[nm] > 0 else -1e9)
        parts[name].extend(groups[k])
    for name in names:
        parts[name].sort(key=lambda r: r["image_id"])
    return parts


def split_dataset(dataset: CocoDataset, fractions: Mapping[str, float] = DEFAULT_FRACTIONS, seed: int = 0,
                  group_key: str = "patient_id") -> dict[str, CocoDataset]:
    """:func:`split_records` on a dataset; each part keeps the class list and category ids."""
    parts = split_records(dataset.records, fractions, seed, group_key)
    return {name: CocoDataset(recs, dataset.class_names, dataset.category_ids, dict(dataset.info), dataset.source)
            for name, recs in parts.items()}
