"""Giving cells to validators: balanced, seeded, each list shuffled on its own. Plain Python, no Django."""
from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from typing import TypeVar

C = TypeVar("C")
V = TypeVar("V", bound=Hashable)


def assign_balanced(*, cells: Sequence[C], validators: Sequence[V], per_cell: int, seed: int) -> dict[V, list[C]]:
    """Give each cell to ``per_cell`` validators: the least loaded first, ties broken by the seeded RNG.

    ``cells`` in a stable order (the caller sorts them); the same inputs give the same lists.
    """
    rng = random.Random(seed)
    order = list(cells)
    rng.shuffle(order)
    load = {v: 0 for v in validators}
    lists: dict = {v: [] for v in validators}
    for cell in order:
        ranked = sorted(validators, key=lambda v: (load[v], rng.random()))
        for validator in ranked[:per_cell]:
            lists[validator].append(cell)
            load[validator] += 1
    return lists


def seeded_shuffle(items: Sequence[C], seed: int | str) -> list[C]:
    """A copy of ``items`` shuffled by ``random.Random(seed)``."""
    out = list(items)
    random.Random(seed).shuffle(out)
    return out
