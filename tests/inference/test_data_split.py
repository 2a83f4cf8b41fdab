"""Train/val/test split: fixed seed, fractions, and no patient in two splits."""
from __future__ import annotations

from inference.data import split_records


def _records(n, per_patient=None):
    return [{"image_id": i, "patient_id": (f"P{i // per_patient}" if per_patient else None), "annotations": []}
            for i in range(n)]


def test_same_seed_same_split_and_input_order_does_not_matter():
    recs = _records(50)
    a = split_records(recs, seed=4)
    b = split_records(list(reversed(recs)), seed=4)
    assert {k: [r["image_id"] for r in v] for k, v in a.items()} == {k: [r["image_id"] for r in v] for k, v in b.items()}
    c = split_records(recs, seed=5)
    assert [r["image_id"] for r in c["test"]] != [r["image_id"] for r in a["test"]]


def test_fractions_are_met_and_every_image_is_used_once():
    parts = split_records(_records(100), {"train": 0.7, "val": 0.1, "test": 0.2}, seed=0)
    assert {k: len(v) for k, v in parts.items()} == {"train": 70, "val": 10, "test": 20}
    ids = sorted(r["image_id"] for v in parts.values() for r in v)
    assert ids == list(range(100))


def test_no_patient_in_two_splits():
    parts = split_records(_records(60, per_patient=4), seed=1)
    seen = {}
    for name, recs in parts.items():
        for r in recs:
            assert seen.setdefault(r["patient_id"], name) == name
    assert all(parts[k] for k in ("train", "val", "test"))
    assert abs(len(parts["train"]) - 48) <= 4
