"""The class palette stays apart for colour-blind viewers: round spermatid is nowhere near erythrocyte red."""
from __future__ import annotations

import itertools

from portal.review.classes import CLASS_COLORS, hex_to_rgb

# Machado et al. (2009) severity-1 simulation matrices (linear RGB)
SIMULATIONS = {
    "normal": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216), (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413), (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602), (0.004733, 0.691367, 0.303900)),
}


def _linear(c: int) -> float:
    v = c / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _lab(rgb) -> tuple[float, float, float]:
    r, g, b = (min(max(v, 0.0), 1.0) for v in rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
    f = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in (x, y, z)]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def _seen(color: str, matrix) -> tuple[float, float, float]:
    lin = [_linear(c) for c in hex_to_rgb(color)]
    return _lab([sum(m * v for m, v in zip(row, lin)) for row in matrix])


def _delta_e(a, b) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5


def test_round_spermatid_and_erythrocyte_differ_clearly_for_every_common_vision():
    for name, matrix in SIMULATIONS.items():
        d = _delta_e(_seen(CLASS_COLORS["round_spermatid"], matrix), _seen(CLASS_COLORS["erythrocyte"], matrix))
        assert d > 30, f"{name}: ΔE {d:.1f}"


def test_every_pair_of_class_colours_stays_distinguishable():
    for (a, ca), (b, cb) in itertools.combinations(CLASS_COLORS.items(), 2):
        for name, matrix in SIMULATIONS.items():
            d = _delta_e(_seen(ca, matrix), _seen(cb, matrix))
            assert d > 12, f"{a} vs {b} under {name}: ΔE {d:.1f}"
