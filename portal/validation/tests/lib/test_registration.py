"""Registration math: two-point similarity and phase-correlation alignment on synthetic images."""
from __future__ import annotations

import math

import numpy as np
import pytest

from portal.validation.lib.registration import (
    RegistrationError,
    Similarity,
    align_by_phase_correlation,
    refine_shift,
    scale_from_pixel_sizes,
    similarity_from_two_points,
)


def _blobs(height: int, width: int, centres, *, sigma: float, bright: bool, seed: int = 0) -> np.ndarray:
    """Round cells on a background: dark on bright (brightfield) or bright on dark (fluorescence)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    cells = sum(np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)) for x, y in centres)
    image = 30 + 180 * cells if bright else 200 - 120 * cells
    return np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)


def test_two_points_give_scale_rotation_and_translation():
    truth = Similarity(scale=1.7, rotation_rad=math.radians(12), offset_x_px=40.5, offset_y_px=-13.0)
    stain = [(10.0, 20.0), (300.0, 220.0)]
    field = [truth.apply(x, y) for x, y in stain]
    found = similarity_from_two_points(stain, field)
    assert found.scale == pytest.approx(1.7)
    assert math.degrees(found.rotation_rad) == pytest.approx(12)
    assert (found.offset_x_px, found.offset_y_px) == pytest.approx((40.5, -13.0))
    assert found.apply(123, 45) == pytest.approx(truth.apply(123, 45))
    assert found.inverse_apply(*found.apply(123, 45)) == pytest.approx((123, 45))


def test_two_points_that_coincide_are_refused():
    with pytest.raises(RegistrationError, match="apart"):
        similarity_from_two_points([(10, 10), (11, 10)], [(50, 50), (90, 90)])
    with pytest.raises(RegistrationError, match="two"):
        similarity_from_two_points([(10, 10)], [(50, 50), (90, 90)])
    with pytest.raises(RegistrationError, match="scale"):
        similarity_from_two_points([(0, 0), (1000, 0)], [(0, 0), (10, 0)])


def test_phase_correlation_finds_the_shift_of_an_inverted_fluorescence_image():
    rng = np.random.default_rng(3)
    centres = [(float(x), float(y)) for x, y in rng.uniform(30, 570, size=(25, 2))]
    field = _blobs(450, 600, [(x, y * 0.75) for x, y in centres], sigma=9, bright=False, seed=1)
    # the stain image has half the resolution (2x the um/px) and is shifted by (+23, -17) field px
    shift = (23.0, -17.0)
    stain_centres = [((x - shift[0]) / 2, (y * 0.75 - shift[1]) / 2) for x, y in centres]
    stain = _blobs(225, 300, stain_centres, sigma=4.5, bright=True, seed=2)
    scale, how = scale_from_pixel_sizes(stain_um_per_px=0.4, field_um_per_px=0.2, stain_width=300, field_width=600)
    assert (scale, how) == (2.0, "pixel_sizes")
    found, strength = align_by_phase_correlation(field, stain, scale=scale, max_side_px=300)
    assert found.scale == 2.0 and found.rotation_rad == 0.0
    assert found.offset_x_px == pytest.approx(shift[0], abs=1.0)
    assert found.offset_y_px == pytest.approx(shift[1], abs=1.0)
    assert strength > 5


def test_a_scale_from_widths_when_a_pixel_size_is_missing():
    assert scale_from_pixel_sizes(stain_um_per_px=None, field_um_per_px=0.2, stain_width=200,
                                  field_width=400) == (2.0, "image_widths")


def test_refinement_climbs_from_a_rough_start_to_the_match_of_either_contrast():
    rng = np.random.default_rng(5)
    centres = [(float(x), float(y)) for x, y in rng.uniform(20, 380, size=(15, 2))]
    field = _blobs(300, 400, centres, sigma=8, bright=False, seed=1).astype(float)
    stain = _blobs(300, 400, [(x - 12, y + 7) for x, y in centres], sigma=8, bright=True, seed=2).astype(float)
    assert refine_shift(field, stain, 5.0, 1.0) == pytest.approx((12.0, -7.0), abs=0.3)
    assert refine_shift(field, 255 - stain, 18.0, -2.0) == pytest.approx((12.0, -7.0), abs=0.3)
