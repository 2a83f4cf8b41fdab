"""The side-by-side comparison of two result sets of one image: outlines as inline SVG over the image."""
from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import mark_safe

from portal.results.models import ResultSet
from portal.review.classes import CLASS_COLORS
from portal.review.lib.geometry import rle_to_polygon_outline


def result_set_panel(result_set: ResultSet, image) -> dict:
    """Counts per class and an SVG layer of the set's outlines, in image pixels."""
    counts: dict[str, int] = {}
    shapes = []
    for det in result_set.detections.order_by("index"):
        counts[det.class_name] = counts.get(det.class_name, 0) + 1
        points = det.polygon or rle_to_polygon_outline(det.mask_rle)
        if not points:
            continue
        color = CLASS_COLORS.get(det.class_name, "#333333")
        score = "" if det.score is None else f" {det.score:.2f}"
        shapes.append(f'<polygon points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}" fill="none" '
                      f'stroke="{color}" stroke-width="1.5"><title>{escape(det.class_name)}{score}</title></polygon>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" class="compare-overlay" viewBox="0 0 {image.width} {image.height}" '
           f'preserveAspectRatio="none" aria-hidden="true">{"".join(shapes)}</svg>')
    return {"result_set": result_set, "counts": sorted(counts.items()), "total": sum(counts.values()),
            "svg": mark_safe(svg)}
