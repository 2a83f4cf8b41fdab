"""The detector's class list, by name (``../shared/spec/labels.md``). Imports nothing heavy.

Category ids are 1..6 in COCO files and 0..5 inside the model. Names are the contract between
training data, model bundles and the portal: map by name, never by index alone.
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


def coco_categories(class_names=CLASS_NAMES) -> list[dict]:
    """COCO ``categories`` for ``class_names``: ids 1..K in list order."""
    return [{"id": i + 1, "name": name, "supercategory": "cell"} for i, name in enumerate(class_names)]
