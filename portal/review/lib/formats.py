"""File formats that microscopes and their software read (no Django here)."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable


def micromanager_position_list(positions: Iterable[dict], *, xy_stage: str = "XYStage") -> dict:
    """A Micro-Manager 2.0 position list (``.pos``): a "Micro-Manager Property Map" JSON document.

    ``positions``: dicts with ``label``, ``x_um``, ``y_um`` and optional ``properties`` (str -> str).
    """
    array = []
    for p in positions:
        array.append({
            "DefaultXYStage": {"type": "STRING", "scalar": xy_stage},
            "DefaultZStage": {"type": "STRING", "scalar": ""},
            "DevicePositions": {"type": "PROPERTY_MAP", "array": [{
                "Device": {"type": "STRING", "scalar": xy_stage},
                "Position_um": {"type": "DOUBLE", "array": [float(p["x_um"]), float(p["y_um"])]},
            }]},
            "GridCol": {"type": "INTEGER", "scalar": 0},
            "GridRow": {"type": "INTEGER", "scalar": 0},
            "Label": {"type": "STRING", "scalar": str(p["label"])},
            "Properties": {"type": "PROPERTY_MAP", "scalar": {
                str(k): {"type": "STRING", "scalar": str(v)} for k, v in (p.get("properties") or {}).items()
            }},
        })
    return {
        "encoding": "UTF-8",
        "format": "Micro-Manager Property Map",
        "major_version": 2,
        "minor_version": 0,
        "map": {"StagePositions": {"type": "PROPERTY_MAP", "array": array}},
    }


def qupath_points(points: Iterable[dict], *, properties: dict | None = None) -> dict:
    """QuPath-readable GeoJSON: one Point feature per cell, pixel coordinates, top-left origin.

    ``points``: dicts with ``x_px``, ``y_px``, ``name``, ``class_name`` and optional ``measurements``.
    """
    features = []
    for p in points:
        features.append({
            "type": "Feature",
            "id": str(p.get("id", "")),
            "geometry": {"type": "Point", "coordinates": [float(p["x_px"]), float(p["y_px"])]},
            "properties": {
                "objectType": "annotation",
                "name": p.get("name", ""),
                "classification": {"name": p.get("class_name", ""), "color": p.get("color_rgb", [230, 25, 75])},
                "isLocked": True,
                "measurements": p.get("measurements") or {},
            },
        })
    out = {"type": "FeatureCollection", "features": features}
    if properties:
        out["properties"] = properties  # GeoJSON foreign member: where the list came from
    return out


def rows_to_csv(header: list[str], rows: Iterable[list]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()
