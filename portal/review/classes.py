"""The six cell classes (``shared/spec/labels.md``; COCO category ids 1..6 in this order) and their colours.

Colours are the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies).
Kept here rather than imported from ``inference.data`` so that the web process never imports torch.
"""
from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = (
    "round_spermatid",
    "spermatocyte",
    "elongated_spermatid",
    "spermatozoon",
    "erythrocyte",
    "leukocyte",
)
TARGET_CLASS = "round_spermatid"
CLASS_COLORS: dict[str, str] = {
    "round_spermatid": "#e69f00",
    "spermatocyte": "#56b4e9",
    "elongated_spermatid": "#cc79a7",
    "spermatozoon": "#0072b2",
    "erythrocyte": "#d55e00",
    "leukocyte": "#009e73",
}
CLASS_LABELS: dict[str, str] = {n: n.replace("_", " ") for n in CLASS_NAMES}


def coco_categories() -> list[dict]:
    return [{"id": i + 1, "name": n, "supercategory": "cell"} for i, n in enumerate(CLASS_NAMES)]


def hex_to_rgb(color: str) -> list[int]:
    return [int(color[i:i + 2], 16) for i in (1, 3, 5)]
