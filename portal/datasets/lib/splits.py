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


def patient_splits(*, patient_images: dict[str, int], frozen_test: Sequence[str] | None, seed: int = 0,
                   patient_groups: dict[str, str] | None = None) -> dict[str, str]:
    """Map each patient code to ``train``, ``val`` or ``test``.

    ``patient_images``: patient code -> number of images (sizes guide the split). ``frozen_test``: the
    line's test patients, or None for a line's first version: then test patients are chosen here, within
    each group of ``patient_groups`` (patient -> center) separately, so that every pooled center has
    held-out images of its own (at least one test patient in a group of three patients or more).
    """
    out: dict[str, str] = {}
    if frozen_test is None:
        groups: dict[str, dict[str, int]] = {}
        for code, n in patient_images.items():
            groups.setdefault((patient_groups or {}).get(code, ""), {})[code] = n
        for _, members in sorted(groups.items()):
            part: dict[str, str] = {}
            for name, rows in split_records(_records(members), DEFAULT_FRACTIONS, seed=seed).items():
                for row in rows:
                    part[row["patient_id"]] = name
            if len(members) >= 3 and "test" not in part.values():
                _move_smallest(part, members, to="test")
            out.update(part)
        return out
    test = set(frozen_test)
    for code in patient_images:
        if code in test:
            out[code] = "test"
    rest = {code: n for code, n in patient_images.items() if code not in test}
    for name, rows in split_records(_records(rest), TRAIN_VAL_FRACTIONS, seed=seed).items():
        for row in rows:
            out[row["patient_id"]] = name
    return out


def _records(patient_images: dict[str, int]) -> list[dict]:
    return [{"image_id": f"{code}:{k}", "patient_id": code} for code, n in sorted(patient_images.items())
            for k in range(n)]


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
