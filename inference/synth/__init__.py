"""Our synthetic brightfield cell generator (COCO with masks and ``um_per_px``; deterministic by seed)."""
from .cells import CLASS_FREQUENCY, render_cell
from .generator import FieldOptions, generate_dataset, render_field, write_split

__all__ = ["CLASS_FREQUENCY", "FieldOptions", "generate_dataset", "render_cell", "render_field", "write_split"]
