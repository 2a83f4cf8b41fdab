"""Pure cell-matching rules of validation studies."""
from __future__ import annotations

from portal.validation.lib.matching import (
    any_closer,
    canonical_sha256,
    distance_limit_px,
    first_within,
    is_candidate,
    is_model_positive,
    subsample_indices,
)


def test_the_canonical_hash_ignores_key_order():
    assert canonical_sha256({"a": 1, "b": [1, 2]}) == canonical_sha256({"b": [1, 2], "a": 1})
    assert canonical_sha256({"a": 1}) != canonical_sha256({"a": 2})


def test_a_distance_in_micrometres_uses_the_pixel_size_or_the_fallback():
    assert distance_limit_px(0.2, 4.0, 20.0) == 20.0 * 1.0  # 4 µm at 0.2 µm/px
    assert distance_limit_px(0.5, 4.0, 20.0) == 8.0
    assert distance_limit_px(None, 4.0, 20.0) == 20.0


def test_only_the_target_class_at_or_above_the_threshold_is_positive():
    kw = {"target_class": "round_spermatid", "score_threshold": 0.5}
    assert is_model_positive("round_spermatid", 0.5, **kw)
    assert not is_model_positive("round_spermatid", 0.49, **kw)
    assert not is_model_positive("spermatocyte", 0.99, **kw)
    assert not is_model_positive("round_spermatid", None, **kw)


def test_candidates_are_positives_for_picked_cells_and_every_class_above_the_floor_for_whole_field():
    assert is_candidate(design="picked_cells", score=0.9, positive=True, candidate_threshold=0.05)
    assert not is_candidate(design="picked_cells", score=0.9, positive=False, candidate_threshold=0.05)
    assert is_candidate(design="whole_field", score=0.06, positive=False, candidate_threshold=0.05)
    assert not is_candidate(design="whole_field", score=None, positive=False, candidate_threshold=0.05)


def test_subsampling_is_seeded_sorted_and_skipped_when_everything_fits():
    assert subsample_indices(10, None, 1) is None and subsample_indices(10, 10, 1) is None
    picked = subsample_indices(100, 7, 42)
    assert picked == subsample_indices(100, 7, 42) and picked == sorted(picked) and len(set(picked)) == 7
    assert subsample_indices(100, 7, 43) != picked


def test_the_first_point_within_the_limit_matches_and_strictly_closer_means_taken():
    points = [(0.0, 0.0), (10.0, 0.0), (10.5, 0.0)]
    assert first_within(points, 10.0, 3.0, 3.0) == 1
    assert first_within(points, 50.0, 0.0, 3.0) is None
    assert any_closer(points, 0.0, 2.9, 3.0) and not any_closer(points, 0.0, 3.0, 3.0)
