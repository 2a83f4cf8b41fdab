"""Stage coordinates of a cell from its image's stage position (no Django here).

Convention (stated in the exports): ``stage_x_um``/``stage_y_um`` of an image are the stage position
of the image *centre*. A cell's offset from the centre in pixels (x right, y down) is scaled by
``um_per_px``, mirrored by the session's ``stage_flip_x``/``stage_flip_y``, then rotated by
``stage_rotation`` degrees (counter-clockwise in stage axes), and added to the image's stage position.
"""
from __future__ import annotations

STAGE_CONVENTION = (
    "stage position of image centre + rotate(flip((centroid_px - image_centre_px) * um_per_px)); "
    "flip then counter-clockwise rotation by the session's stage orientation"
)


def cell_stage_position(
    *, centroid_x_px: float, centroid_y_px: float, width: int, height: int, um_per_px: float,
    stage_x_um: float, stage_y_um: float, flip_x: bool = False, flip_y: bool = False, rotation: int = 0,
) -> tuple[float, float]:
    dx = (centroid_x_px - width / 2.0) * um_per_px
    dy = (centroid_y_px - height / 2.0) * um_per_px
    if flip_x:
        dx = -dx
    if flip_y:
        dy = -dy
    rotation = int(rotation) % 360
    if rotation == 90:
        dx, dy = -dy, dx
    elif rotation == 180:
        dx, dy = -dx, -dy
    elif rotation == 270:
        dx, dy = dy, -dx
    elif rotation != 0:
        raise ValueError("stage rotation must be 0, 90, 180 or 270 degrees")
    return round(stage_x_um + dx, 3), round(stage_y_um + dy, 3)
