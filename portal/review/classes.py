"""The six cell classes (``shared/spec/labels.md``; COCO category ids 1..6 in this order) and their colours.

Colours are the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies). The target
class, round spermatid, is bluish green: far from erythrocyte vermillion for every viewer (orange, its old
colour, sat next to vermillion; it is left out).
The class list itself comes from ``inference.labels`` (no torch import).
"""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from inference.labels import CLASS_NAMES, TARGET_CLASS, coco_categories

__all__ = ["CLASS_COLORS", "CLASS_LABELS", "CLASS_NAMES", "TARGET_CLASS", "coco_categories", "hex_to_rgb"]

CLASS_COLORS: dict[str, str] = {
    "round_spermatid": "#009e73",
    "spermatocyte": "#56b4e9",
    "elongated_spermatid": "#cc79a7",
    "spermatozoon": "#0072b2",
    "erythrocyte": "#d55e00",
    "leukocyte": "#f0e442",
}
# What people read (translated; the names above stay the machine identifiers in exports and the API).
CLASS_LABELS: dict[str, str] = {
    "round_spermatid": _("round spermatid"),
    "spermatocyte": _("spermatocyte"),
    "elongated_spermatid": _("elongated spermatid"),
    "spermatozoon": _("spermatozoon"),
    "erythrocyte": _("erythrocyte"),
    "leukocyte": _("leukocyte"),
}
assert set(CLASS_LABELS) == set(CLASS_NAMES), "every class needs a label"


def hex_to_rgb(color: str) -> list[int]:
    return [int(color[i:i + 2], 16) for i in (1, 3, 5)]
