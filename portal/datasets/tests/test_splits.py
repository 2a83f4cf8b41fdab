"""Patient-level splits (no database)."""
from portal.datasets.lib.splits import patient_splits


def test_every_center_with_three_patients_gets_its_own_test_patients():
    sizes = {f"a{k}": 2 for k in range(4)} | {f"b{k}": 1 for k in range(3)}
    groups = {code: code[0] for code in sizes}
    splits = patient_splits(patient_images=sizes, frozen_test=None, seed=17, patient_groups=groups)
    assert set(splits) == set(sizes)
    assert any(s == "test" for c, s in splits.items() if c.startswith("a"))
    assert any(s == "test" for c, s in splits.items() if c.startswith("b"))


def test_frozen_test_patients_stay_and_new_patients_never_join_test():
    first = patient_splits(patient_images={f"p{k}": 3 for k in range(6)}, frozen_test=None, seed=1)
    test = sorted(c for c, s in first.items() if s == "test")
    later = patient_splits(patient_images={f"p{k}": 3 for k in range(12)}, frozen_test=test, seed=1)
    assert sorted(c for c, s in later.items() if s == "test") == test
    assert patient_splits(patient_images={f"p{k}": 3 for k in range(12)}, frozen_test=test, seed=1) == later


def test_the_same_input_gives_the_same_split():
    sizes = {f"p{k}": k + 1 for k in range(8)}
    assert patient_splits(patient_images=sizes, frozen_test=None, seed=3) == \
        patient_splits(patient_images=dict(reversed(list(sizes.items()))), frozen_test=None, seed=3)
