"""Cell crops: every crop has the same pixel size and format whatever the cell's source.

The window is ``crop_um`` micrometres wide around the cell (a fixed pixel width when the image has no
pixel size), padded with mid-grey at the image border, and resized to ``CROP_PX`` square. The PNG is
written without metadata, so bytes reveal nothing but the pixels.
"""
from __future__ import annotations

import io

from PIL import Image as PILImage

from portal.core.media import media_open_local

CROP_PX = 192
FALLBACK_WINDOW_PX = 128
PAD_GREY = (128, 128, 128)


def window_px(*, um_per_px: float | None, crop_um: float) -> int:
    """Side of the square window in source pixels."""
    if not um_per_px or um_per_px <= 0:
        return FALLBACK_WINDOW_PX
    return max(16, round(crop_um / um_per_px))


def load_display(image) -> PILImage.Image:
    """The image's 8-bit display rendering as RGB."""
    with media_open_local(image.display_file.name) as handle:
        pil = PILImage.open(handle)
        pil.load()
    return pil.convert("RGB")


def render_crop(source: PILImage.Image, *, x_px: float, y_px: float, side_px: int) -> bytes:
    """PNG bytes of a ``CROP_PX`` square crop centred on (x_px, y_px)."""
    left = round(x_px - side_px / 2)
    top = round(y_px - side_px / 2)
    canvas = PILImage.new("RGB", (side_px, side_px), PAD_GREY)
    box = (max(left, 0), max(top, 0), min(left + side_px, source.width), min(top + side_px, source.height))
    if box[2] > box[0] and box[3] > box[1]:
        canvas.paste(source.crop(box), (box[0] - left, box[1] - top))
    canvas = canvas.resize((CROP_PX, CROP_PX), PILImage.Resampling.LANCZOS)
    out = io.BytesIO()
    canvas.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()


def plain_png(source: PILImage.Image) -> bytes:
    """The whole image re-encoded as PNG without metadata (for picking and missed-cell pages)."""
    out = io.BytesIO()
    source.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()
