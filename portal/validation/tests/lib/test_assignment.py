"""Pure assignment of cells to validators."""
from __future__ import annotations

from portal.validation.lib.assignment import assign_balanced, seeded_shuffle


def test_every_cell_goes_to_per_cell_distinct_validators_and_loads_stay_balanced():
    cells = [f"c{i:02d}" for i in range(25)]
    lists = assign_balanced(cells=cells, validators=["v1", "v2", "v3"], per_cell=2, seed=7)
    for cell in cells:
        assert sum(cell in own for own in lists.values()) == 2
    loads = sorted(len(own) for own in lists.values())
    assert sum(loads) == 50 and loads[-1] - loads[0] <= 1


def test_the_same_seed_gives_the_same_lists_and_another_seed_other_lists():
    cells = [f"c{i:02d}" for i in range(30)]
    one = assign_balanced(cells=cells, validators=["a", "b", "c"], per_cell=1, seed=1)
    assert one == assign_balanced(cells=cells, validators=["a", "b", "c"], per_cell=1, seed=1)
    assert one != assign_balanced(cells=cells, validators=["a", "b", "c"], per_cell=1, seed=2)


def test_a_seeded_shuffle_is_a_reproducible_permutation_that_leaves_its_input_alone():
    items = list(range(20))
    shuffled = seeded_shuffle(items, "study:cell")
    assert shuffled == seeded_shuffle(items, "study:cell") and sorted(shuffled) == items
    assert items == list(range(20)) and shuffled != items
