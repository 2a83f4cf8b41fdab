"""A short stage travel path through the cells of a pick list (no Django here).

The microscope's stage moves from cell to cell; visiting cells by score zig-zags across the slide. The
order here is an open path (no return to the start): a nearest-neighbour tour from the first point,
then 2-opt (reverse a stretch of the path while that shortens it) until no reversal helps. 2-opt only
ever accepts a shorter path, so the result is never longer than the nearest-neighbour path.
Coordinates are stage micrometres; lengths are Euclidean.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Point = tuple[float, float]

# An improvement smaller than this (µm) is rounding, not a shorter path: it must not loop forever.
_EPSILON_UM = 1e-9


def _distance(a: Point, b: Point) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def path_length(points: Sequence[Point], order: Sequence[int]) -> float:
    """Length of the open path that visits ``points`` in ``order`` (µm when points are µm)."""
    return sum(_distance(points[order[k]], points[order[k + 1]]) for k in range(len(order) - 1))


def nearest_neighbour_order(points: Sequence[Point], *, start: int = 0) -> list[int]:
    """From ``start``, always go to the closest point not yet visited (ties: the lower index)."""
    if not points:
        return []
    left = set(range(len(points)))
    left.discard(start)
    order = [start]
    while left:
        here = points[order[-1]]
        nearest = min(left, key=lambda k: (_distance(here, points[k]), k))
        order.append(nearest)
        left.discard(nearest)
    return order


# A fixed amount of work (pairs of edges compared), so a long list is still answered in about a second and
# the same list always gets the same order (the page and the .pos export must agree).
MAX_EVALUATIONS = 500_000


def two_opt(points: Sequence[Point], order: Sequence[int], *, max_passes: int = 50,
            max_evaluations: int = MAX_EVALUATIONS) -> list[int]:
    """Improve an open path by 2-opt: reverse ``order[i+1..j]`` whenever that shortens the path.

    Reversing a stretch that reaches either end of the path is allowed too (the path may start and end
    anywhere). Stops after a pass with no improvement, after ``max_passes`` passes, or once
    ``max_evaluations`` reversals have been weighed (deterministic, unlike a time limit); every accepted
    reversal shortens the path, so stopping early never returns a longer path than the one given.
    """
    route = list(order)
    n = len(route)
    if n < 3:
        return route
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    hypot = math.hypot
    evaluations = 0
    for _ in range(max_passes):
        improved = False
        # i: index of the point before the stretch (-1: the stretch starts the path)
        for i in range(-1, n - 2):
            if evaluations >= max_evaluations:
                return route
            a = route[i] if i >= 0 else None
            b = route[i + 1]
            for j in range(i + 2, n):
                c = route[j]
                d = route[j + 1] if j + 1 < n else None
                before = after = 0.0
                if a is not None:
                    before += hypot(xs[a] - xs[b], ys[a] - ys[b])
                    after += hypot(xs[a] - xs[c], ys[a] - ys[c])
                if d is not None:
                    before += hypot(xs[c] - xs[d], ys[c] - ys[d])
                    after += hypot(xs[b] - xs[d], ys[b] - ys[d])
                if after < before - _EPSILON_UM:
                    route[i + 1:j + 1] = reversed(route[i + 1:j + 1])
                    b = route[i + 1]
                    improved = True
            evaluations += n - i - 2
        if not improved:
            break
    return route


@dataclass(frozen=True)
class TravelPlan:
    """The visiting order (indexes into the points) and the travel of it and of the given order, in µm."""

    order: list[int]
    length_um: float
    given_order_length_um: float

    @property
    def saved_fraction(self) -> float:
        """How much shorter than the given order, as a fraction of it (0 when the given order has no length)."""
        if self.given_order_length_um <= 0:
            return 0.0
        return 1.0 - self.length_um / self.given_order_length_um


def travel_plan(points: Sequence[Point]) -> TravelPlan:
    """A short open path through ``points`` (nearest neighbour from the first point, then 2-opt)."""
    given = list(range(len(points)))
    order = two_opt(points, nearest_neighbour_order(points, start=0)) if points else []
    return TravelPlan(order=order, length_um=path_length(points, order),
                      given_order_length_um=path_length(points, given))
