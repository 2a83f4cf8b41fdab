"""The pick list's travel order: nearest neighbour + 2-opt over stage coordinates (no Django needed)."""
from __future__ import annotations

import itertools
import random

import pytest

from portal.review.lib.travel import nearest_neighbour_order, path_length, travel_plan, two_opt


def _optimum(points):
    """Shortest open path by trying every order (small cases only)."""
    return min(path_length(points, order) for order in itertools.permutations(range(len(points))))


def test_it_visits_every_point_once():
    rng = random.Random(3)
    points = [(rng.uniform(0, 5000), rng.uniform(0, 5000)) for _ in range(40)]
    plan = travel_plan(points)
    assert sorted(plan.order) == list(range(40))


@pytest.mark.parametrize("seed", range(25))
def test_two_opt_is_never_longer_than_nearest_neighbour(seed):
    rng = random.Random(seed)
    points = [(rng.uniform(0, 1000), rng.uniform(0, 1000)) for _ in range(rng.randint(3, 30))]
    nn = nearest_neighbour_order(points)
    assert path_length(points, two_opt(points, nn)) <= path_length(points, nn) + 1e-9


def test_it_finds_the_straight_line_through_points_on_a_line():
    xs = [700.0, 100.0, 400.0, 0.0, 900.0, 250.0, 500.0]
    points = [(x, 50.0) for x in xs]
    plan = travel_plan(points)
    assert plan.length_um == pytest.approx(900.0)
    assert [points[k][0] for k in plan.order] in (sorted(xs), sorted(xs, reverse=True))


def test_it_walks_round_a_square_instead_of_crossing_it():
    # corners visited diagonally by score (0 -> 2 -> 1 -> 3); the shortest open path is three sides
    points = [(0.0, 0.0), (1000.0, 1000.0), (1000.0, 0.0), (0.0, 1000.0)]
    plan = travel_plan(points)
    assert plan.length_um == pytest.approx(3000.0)
    assert plan.given_order_length_um > plan.length_um


def test_two_opt_undoes_a_crossing_that_nearest_neighbour_makes():
    # nearest neighbour from the first point strands the far point and crosses back over the path
    points = [(0.0, 0.0), (10.0, 0.0), (20.0, 1.0), (30.0, 0.0), (-100.0, 0.0)]
    nn = nearest_neighbour_order(points)
    improved = two_opt(points, nn)
    assert path_length(points, improved) < path_length(points, nn)
    assert path_length(points, improved) == pytest.approx(_optimum(points))


@pytest.mark.parametrize("seed", range(10))
def test_it_reaches_the_known_optimum_on_small_cases(seed):
    # a 2 x 3 grid of fields, shuffled: the optimum is a serpentine of 5 steps of 1 mm
    rng = random.Random(seed)
    points = [(x * 1000.0, y * 1000.0) for x in range(3) for y in range(2)]
    rng.shuffle(points)
    assert travel_plan(points).length_um == pytest.approx(5000.0)
    assert _optimum(points) == pytest.approx(5000.0)


def test_it_handles_no_point_and_one_point():
    assert travel_plan([]).order == []
    plan = travel_plan([(5.0, 5.0)])
    assert plan.order == [0] and plan.length_um == 0.0 and plan.saved_fraction == 0.0


def test_a_work_cap_stops_early_but_never_returns_a_longer_path_and_is_repeatable():
    rng = random.Random(11)
    points = [(rng.uniform(0, 20000), rng.uniform(0, 20000)) for _ in range(120)]
    nn = nearest_neighbour_order(points)
    capped = two_opt(points, nn, max_evaluations=2000)
    assert path_length(points, capped) <= path_length(points, nn)
    assert path_length(points, two_opt(points, nn)) <= path_length(points, capped)
    assert capped == two_opt(points, nn, max_evaluations=2000)
