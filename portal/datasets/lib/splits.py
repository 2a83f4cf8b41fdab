"""Patient-level splits of a dataset line (no Django here).

Version 1 of a line splits its patients into train/val/test with ``inference.data.split.split_records``
(grouped by patient, seeded); the test patients it picked are then frozen for the line: every later
version puts exactly those patients (the ones it still holds) in test and splits only the others into
train and val. No patient is ever in two splits.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from inference.data.split import DEFAULT_FRACTIONS, split_records

TRAIN_VAL_FRACTIONS = {"train": DEFAULT_FRACTIONS["train"], "val": DEFAULT_FRACTIONS["val"]}


def patient_splits(*, patient_images: dict[str, int], frozen_test: Sequence[str] | None,
                   seed: int = 0) -> dict[str, str]:
    """Map each patient code to ``train``, ``val`` or ``test``.

    ``patient_images``: patient code -> number of images (sizes guide the split). ``frozen_test``:
    the line's test patients, or None for a line's first version (then test patients are chosen here,
    at least one when there are three patients or more).
    """
    records = [{"image_id": k, "patient_id": code} for code, n in sorted(patient_images.items())
               for k in range(n)]
    out: dict[str, str] = {}
    if frozen_test is None:
        parts = split_records(records, DEFAULT_FRACTIONS, seed=seed)
        for name, rows in parts.items():
            for row in rows:
                out[row["patient_id"]] = name
        if len(patient_images) >= 3 and "test" not in out.values():
            _move_smallest(out, patient_images, to="test")
        return out
    test = set(frozen_test)
    rest = [r for r in records if r["patient_id"] not in test]
    for code in patient_images:
        if code in test:
            out[code] = "test"
    for name, rows in split_records(rest, TRAIN_VAL_FRACTIONS, seed=seed).items():
        for row in rows:
            out[row["patient_id"]] = name
    return out


def _move_smallest(out: dict[str, str], sizes: dict[str, int], *, to: str) -> None:
    donors = [c for c, s in out.items() if s == "train"] or list(out)
    code = min(donors, key=lambda c: (sizes[c], c))
    out[code] = to


def split_counts(assignments: Iterable[str]) -> dict[str, int]:
    """How many items fall in each split."""
    counts = {"train": 0, "val": 0, "test": 0}
    for name in assignments:
        counts[name] = counts.get(name, 0) + 1
    return counts
