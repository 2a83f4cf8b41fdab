"""The one pixel pipeline: reading, layout, the 8-bit rule and the resize rule."""
import io

import numpy as np
import pytest
import tifffile
from PIL import Image

from inference import pixels
from inference.data.transforms import shortest_edge_size as transforms_rule


def field(h=60, w=80, seed=0) -> np.ndarray:
    """An 8-bit RGB field with a bright background and darker blobs (p99.9 well above 64)."""
    rng = np.random.default_rng(seed)
    rgb = np.full((h, w, 3), 200, np.float64) + rng.normal(0, 12, (h, w, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    for cy, cx in rng.integers(5, min(h, w) - 5, (6, 2)):
        rgb[(yy - cy) ** 2 + (xx - cx) ** 2 < 25] -= 120
    return np.clip(rgb, 0, 255).astype(np.uint8)


def tiff(arr, **kw) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


def png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_eight_bit_pixels_pass_through_unchanged():
    rgb = field()
    assert np.array_equal(pixels.to_model_rgb(rgb), rgb)
    assert np.array_equal(pixels.read_rgb(png(rgb)), rgb)


def test_the_same_field_as_8_bit_png_16_bit_gray_tiff_and_16_bit_rgb_tiff_gives_the_same_pixels():
    rgb = field()
    gray = rgb[:, :, 1]
    from_png = pixels.read_rgb(png(gray))
    from_gray16 = pixels.read_rgb(tiff(gray.astype(np.uint16) * 257, photometric="minisblack"))
    from_rgb16 = pixels.read_rgb(tiff(np.repeat(gray[:, :, None], 3, 2).astype(np.uint16) * 257, photometric="rgb"))
    assert np.array_equal(from_png, from_gray16) and np.array_equal(from_png, from_rgb16)
    assert np.array_equal(pixels.read_rgb(tiff(rgb.astype(np.uint16) * 257, photometric="rgb")), rgb)


def test_twelve_bit_data_fills_the_8_bit_range_and_a_hot_pixel_clips():
    a = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096)
    a[0, 0] = 65535
    assert pixels.intensity_window(a) == (0.0, 4095.0)
    out = pixels.to_model_rgb(a)
    assert out[0, 0, 0] == 255 and out[-1, -1, 0] == 255 and out[0, 1, 0] == 0
    assert out[32, 0, 0] == round(2048 * 255 / 4095)


def test_eight_bit_data_in_a_16_bit_container_passes_through():
    gray = field()[:, :, 0]
    assert np.array_equal(pixels.to_model_rgb(gray.astype(np.uint16))[:, :, 0], gray)


def test_floats_in_0_1_scale_by_255_and_nan_becomes_black():
    a = np.linspace(0, 1, 50 * 40, dtype=np.float32).reshape(50, 40)
    a[0, 0] = np.nan
    out = pixels.to_model_rgb(a)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255 and out.dtype == np.uint8


def test_layouts_gray_alpha_rgba_planar_and_bool():
    rgb = field()
    assert np.array_equal(pixels.to_model_rgb(np.dstack([rgb, np.full(rgb.shape[:2], 9, np.uint8)])), rgb)
    assert np.array_equal(pixels.to_model_rgb(np.moveaxis(rgb, -1, 0)), rgb)
    la = np.dstack([rgb[:, :, 0], np.zeros(rgb.shape[:2], np.uint8)])
    assert np.array_equal(pixels.to_model_rgb(la)[:, :, 2], rgb[:, :, 0])
    assert pixels.to_model_rgb(np.ones((20, 20), bool)).max() == 255
    with pytest.raises(pixels.PixelError, match="HxWx3"):
        pixels.to_model_rgb(np.zeros((20, 20, 5), np.uint8))


def test_a_multipage_tiff_is_read_page_by_page():
    pages = [np.full((20, 30), v, np.uint8) for v in (10, 20, 30)]
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        for p in pages:
            tw.write(p, photometric="minisblack")
    assert int(pixels.read_image(buf.getvalue(), page=2)[0, 0]) == 30
    with pytest.raises(pixels.PixelError, match="page 3"):
        pixels.read_image(buf.getvalue(), page=3)


def test_unreadable_input_raises_a_pixel_error(tmp_path):
    with pytest.raises(pixels.PixelError, match="not found"):
        pixels.read_image(tmp_path / "missing.png")
    with pytest.raises(pixels.PixelError, match="cannot read"):
        pixels.read_image(b"not an image at all")


def test_one_resize_rule_for_training_and_inference():
    assert transforms_rule is pixels.shortest_edge_size
    assert pixels.shortest_edge_size(512, 640, 512, 1000) == (512, 640)
    assert pixels.shortest_edge_size(480, 640, 512, 800) == (512, 683)
    assert pixels.scaled_size(2048, 2560, 0.5) == (1024, 1280)
    img = field(40, 40)
    assert pixels.resize_rgb(img, (20, 30)).shape == (20, 30, 3)
    assert pixels.resize_mask(np.ones((40, 40), bool), (10, 12)).all()
