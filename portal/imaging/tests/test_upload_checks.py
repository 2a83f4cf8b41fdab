"""Upload checks that must not refuse good images for what their compressed pixels happen to contain,
must say what a file is before saying it was uploaded already, and refuse images too small to analyse."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import PngImagePlugin

from portal.imaging.lib.imagefile import UploadRefused, inspect_upload
from portal.imaging.models import Image
from portal.imaging.tests import corpus
from portal.imaging.tests.test_upload_corpus import upload
from portal.testing.imaging import make_session

LIMITS = {"max_file_bytes": 10**9, "max_pixels": 10**9, "max_pages": 8}
PAYLOAD = b"<svg onload=alert(1)>"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _pixels_with_payload(h: int = 64, w: int = 64) -> np.ndarray:
    arr = corpus.gradient(h, w, rgb=False)
    arr[5, 3:3 + len(PAYLOAD)] = np.frombuffer(PAYLOAD, dtype=np.uint8)
    return arr


def stored_deflate_png(arr: np.ndarray) -> bytes:
    """A gray PNG whose IDAT is a stored (level 0) deflate stream: the pixel bytes appear verbatim."""
    h, w = arr.shape
    raw = b"".join(b"\x00" + arr[y].tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 0))
            + _chunk(b"IEND", b""))


@pytest.fixture
def session(cast):
    return make_session(cast.a)


def test_a_png_whose_compressed_pixels_contain_svg_is_accepted():
    data = stored_deflate_png(_pixels_with_payload())
    assert PAYLOAD in data  # the marker is in the IDAT chunk, nowhere else
    inspected = inspect_upload(data, "field.png", **LIMITS)
    assert inspected.pages[0].pixels.shape == (64, 64)


def test_an_uncompressed_tiff_and_a_bmp_whose_pixels_contain_svg_are_accepted():
    buf = io.BytesIO()
    tifffile.imwrite(buf, _pixels_with_payload(), photometric="minisblack")
    bmp = io.BytesIO()
    PILImage.fromarray(_pixels_with_payload()).save(bmp, format="BMP")
    for name, data in (("field.tif", buf.getvalue()), ("field.bmp", bmp.getvalue())):
        assert PAYLOAD in data
        assert inspect_upload(data, name, **LIMITS).pages[0].pixels.shape == (64, 64)


@pytest.mark.parametrize("compressed", [False, True], ids=["tEXt", "zTXt"])
def test_svg_in_a_png_text_chunk_is_refused(compressed):
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", PAYLOAD.decode(), zip=compressed)
    data = corpus.png_bytes(pnginfo=info)
    assert (PAYLOAD in data) is not compressed
    with pytest.raises(UploadRefused, match="polyglot"):
        inspect_upload(data, "field.png", **LIMITS)


def test_svg_in_a_compressed_itxt_chunk_is_refused():
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Comment", PAYLOAD.decode() * 20, lang="en", tkey="c", zip=True)
    with pytest.raises(UploadRefused, match="polyglot"):
        inspect_upload(corpus.png_bytes(pnginfo=info), "field.png", **LIMITS)


def test_svg_in_a_tiff_description_is_refused():
    buf = io.BytesIO()
    tifffile.imwrite(buf, corpus.gradient(rgb=False), description=PAYLOAD.decode())
    with pytest.raises(UploadRefused, match="polyglot"):
        inspect_upload(buf.getvalue(), "field.tif", **LIMITS)


def test_svg_in_a_jpeg_app_segment_is_refused():
    data = corpus.jpeg_bytes(xmp=b"<x:xmpmeta>" + PAYLOAD + b"</x:xmpmeta>")
    with pytest.raises(UploadRefused, match="polyglot"):
        inspect_upload(data, "field.jpg", **LIMITS)


def test_html_between_the_chunks_of_a_png_is_refused():
    png = corpus.png_bytes()
    data = png[:33] + _chunk(b"prVt", b"<html><script>x()</script>") + png[33:]
    with pytest.raises(UploadRefused, match="polyglot"):
        inspect_upload(data, "field.png", **LIMITS)


def test_a_png_with_a_bad_crc_is_refused_with_a_plain_message():
    data = bytearray(corpus.png_bytes())
    data[29] ^= 0xFF  # the IHDR chunk's CRC
    with pytest.raises(UploadRefused) as refused:
        inspect_upload(bytes(data), "field.png", **LIMITS)
    assert refused.value.reason == "the PNG is corrupt (IHDR chunk has a wrong CRC checksum)"
    assert "0x" not in refused.value.reason and "object" not in refused.value.reason


def test_a_png_named_jpg_is_refused_for_its_content_even_when_already_uploaded(client, cast, session):
    client.force_login(cast.a.uploader)
    data = corpus.png_bytes()
    assert upload(client, session, {"first.png": data}).status_code == 201
    response = upload(client, make_session(cast.a), {"renamed.jpg": data})
    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert "the content is PNG but the name ends in '.jpg'" in error["message"]
    assert "already uploaded" not in error["message"]


@pytest.mark.parametrize("size", [(31, 200), (200, 20)])
def test_an_image_under_32_pixels_on_a_side_is_refused_at_upload(client, cast, session, size):
    client.force_login(cast.a.uploader)
    response = upload(client, session, {"tiny.png": corpus.png_bytes(corpus.gradient(size[1], size[0]))})
    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert f"{size[0]}x{size[1]} pixels is too small to analyse (at least 32 pixels on each side)" in error["message"]
    assert Image.objects.count() == 0


def test_an_image_of_exactly_32_pixels_is_accepted(client, cast, session):
    client.force_login(cast.a.uploader)
    response = upload(client, session, {"small.png": corpus.png_bytes(corpus.gradient(32, 32))})
    assert response.status_code == 201, response.content
