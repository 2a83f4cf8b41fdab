"""Read a CSV of the stage positions of a session's fields (no Django here).

One row per image (field): which image, by the clinic's file name or by the portal's image id, and the
stage X/Y of the image centre in micrometres::

    file_name,stage_x_um,stage_y_um
    field-01.tif,10250.5,-3120
    image_id,stage_x,stage_y,units
    3f0c…,10250.5,-3120,µm

Column names are matched without case, spaces or underscores (``stage x``, ``Stage_X_um`` …). A
``units`` column, when present, must say µm (or um). Every bad row gets its own message and nothing
is returned as valid unless every row is: the caller saves all rows or none. Errors carry a ``code`` and
its ``params`` (the caller words them in the reader's language, see ``STAGE_CSV_ERRORS``) and an
English ``message``.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_ROWS = 5000
# No microscope stage travels a metre: a larger value is a unit or typing error.
MAX_ABS_UM = 1_000_000.0

_ALIASES = {
    "filename": "file_name", "file": "file_name", "name": "file_name", "imageid": "image_id", "id": "image_id",
    "image": "image_id", "stagex": "x", "stagexum": "x", "x": "x", "xum": "x",
    "stagexm": "x", "stagey": "y", "stageyum": "y", "stageym": "y", "y": "y", "yum": "y", "units": "units", "unit": "units",
}
_MICROMETRE = {"µm", "μm", "um", "micrometre", "micrometer", "micron", "microns"}


@dataclass
class StageRows:
    """Positions found (``{image id: (x_um, y_um)}``) and one message per bad row (1-based line numbers)."""

    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)  # {"row": line, "code": ..., "params": {...}, "message": text}

    def error(self, row: int, code: str, **params) -> None:
        """Record one bad row (``code`` is a key of ``STAGE_CSV_ERRORS``)."""
        self.errors.append({"row": row, "code": code, "params": params, "message": STAGE_CSV_ERRORS[code] % params})


# The English wording of each error code (the portal shows a translated one with the same parameters).
STAGE_CSV_ERRORS = {
    "header": "The first row must name the columns: file_name or image_id, stage_x_um, stage_y_um "
              "(and optionally units).",
    "too_many_rows": "At most %(max_rows)d rows per file.",
    "units": "Units must be µm, not “%(units)s”.",
    "not_numbers": "Stage X and stage Y must both be numbers (µm).",
    "too_far": "Stage X/Y beyond ±%(max_abs_um).0f µm: are these micrometres?",
    "duplicate": "This image already has a position on row %(first_row)d.",
    "empty": "The file has no rows of positions.",
    "unknown_id": "No image of this session has the id “%(image_id)s”.",
    "shared_name": "%(count)d images share the file name “%(name)s” (pages of one file): use image_id.",
    "unknown_name": "No image of this session has the file name “%(name)s”.",
    "no_image": "Name the image: a file name or an image id.",
}


def _key(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch not in " _-()µμ")


def _number(raw: str) -> float | None:
    try:
        value = float(raw.strip())
    except (TypeError, ValueError, AttributeError):
        return None
    return value if math.isfinite(value) else None


def parse_stage_csv(text: str, *, images: Iterable[tuple[str, str]]) -> StageRows:
    """Match each row to one of ``images`` (``(image id, clinic file name)`` pairs of the session).

    Returns the positions and the per-row errors; when ``errors`` is not empty the positions must not be
    saved. A file name that two images share (pages of one multi-page file) must be given by image id.
    """
    result = StageRows()
    images = list(images)
    ids = {image_id.lower(): image_id for image_id, _ in images}
    by_name: dict[str, list[str]] = {}
    for image_id, name in images:
        if name:
            by_name.setdefault(name.strip().lower(), []).append(image_id)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    columns = {_ALIASES.get(_key(h)): k for k, h in enumerate(header or []) if _ALIASES.get(_key(h))}
    if header is None or ("file_name" not in columns and "image_id" not in columns) or not {"x", "y"} <= set(columns):
        result.error(1, "header")
        return result
    seen: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if line - 1 > MAX_ROWS:
            result.error(line, "too_many_rows", max_rows=MAX_ROWS)
            break

        def cell(name: str, row=row) -> str:
            k = columns.get(name)
            return row[k].strip() if k is not None and k < len(row) else ""

        image_id, problem, params = _match(cell("image_id"), cell("file_name"), ids=ids, by_name=by_name)
        if problem:
            result.error(line, problem, **params)
            continue
        units = cell("units")
        if "units" in columns and units.lower() not in _MICROMETRE:
            result.error(line, "units", units=units)
            continue
        x, y = _number(cell("x")), _number(cell("y"))
        if x is None or y is None:
            result.error(line, "not_numbers")
            continue
        if abs(x) > MAX_ABS_UM or abs(y) > MAX_ABS_UM:
            result.error(line, "too_far", max_abs_um=MAX_ABS_UM)
            continue
        if image_id in seen:
            result.error(line, "duplicate", first_row=seen[image_id])
            continue
        seen[image_id] = line
        result.positions[image_id] = (x, y)
    if not result.positions and not result.errors:
        result.error(2, "empty")
    return result


def _match(raw_id: str, raw_name: str, *, ids: dict[str, str],
           by_name: dict[str, list[str]]) -> tuple[str, str, dict]:
    """(image id, "", {}) for a row that names exactly one image of the session, else ("", error code, params)."""
    if raw_id:
        found = ids.get(raw_id.lower())
        return (found, "", {}) if found else ("", "unknown_id", {"image_id": raw_id})
    if raw_name:
        found = by_name.get(raw_name.lower(), [])
        if len(found) == 1:
            return found[0], "", {}
        if len(found) > 1:
            return "", "shared_name", {"count": len(found), "name": raw_name}
        return "", "unknown_name", {"name": raw_name}
    return "", "no_image", {}
