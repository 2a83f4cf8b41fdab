"""Upload corpus: every test file is generated here, in code (nothing binary is committed)."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import tifffile
from PIL import Image as PILImage
from PIL import PngImagePlugin

SECRET_STRINGS = ["SN-CAM-99817", "2023:04:05 10:11:12", "Dr Jane Identifiable", "48.137154", "GPSLATREF"]


def gradient(h: int = 48, w: int = 64, rgb: bool = True, dtype=np.uint8) -> np.ndarray:
    top = 255 if dtype == np.uint8 else 4000
    y, x = np.mgrid[0:h, 0:w]
    base = ((x * 7 + y * 13) % (top + 1)).astype(dtype)
    if rgb:
        return np.stack([base, base[::-1], np.flipud(base)], axis=-1).astype(dtype)
    return base


def png_bytes(arr=None, **save) -> bytes:
    arr = gradient() if arr is None else arr
    buf = io.BytesIO()
    PILImage.fromarray(arr).save(buf, format="PNG", **save)
    return buf.getvalue()


def jpeg_bytes(arr=None, **save) -> bytes:
    arr = gradient() if arr is None else arr
    buf = io.BytesIO()
    PILImage.fromarray(arr).save(buf, format="JPEG", quality=90, **save)
    return buf.getvalue()


def bmp_bytes() -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(gradient()).save(buf, format="BMP")
    return buf.getvalue()


def tiff_bytes(arr=None, **kw) -> bytes:
    arr = gradient() if arr is None else arr
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


def tiff16_bytes() -> bytes:
    arr = gradient(rgb=False, dtype=np.uint16)
    arr[0, 0] = 65535  # one hot pixel: it must not set the 8-bit window (it clips)
    return tiff_bytes(arr, photometric="minisblack")


def multipage_tiff_bytes(pages: int = 3) -> bytes:
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        for i in range(pages):
            tw.write(gradient(rgb=False) // (i + 1), photometric="minisblack", metadata=None)
    return buf.getvalue()


def ome_tiff_bytes(*, um: float = 0.1625, unit: str = "µm", positions=((1500.5, -220.25), (1600.0, -200.0))) -> bytes:
    arr = np.stack([gradient(rgb=False, dtype=np.uint16) for _ in positions])
    planes = "".join(
        f'<Plane TheZ="0" TheC="0" TheT="{i}" PositionX="{x}" PositionXUnit="µm" PositionY="{y}" '
        f'PositionYUnit="µm"/>'
        for i, (x, y) in enumerate(positions)
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" '
        f'SizeX="{arr.shape[2]}" SizeY="{arr.shape[1]}" SizeC="1" SizeZ="1" SizeT="{len(positions)}" '
        f'PhysicalSizeX="{um}" PhysicalSizeXUnit="{unit}" PhysicalSizeY="{um}" PhysicalSizeYUnit="{unit}">'
        '<Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
        f'<TiffData/>{planes}</Pixels></Image></OME>'
    ).replace("µ", "&#181;")  # TIFF strings are 7-bit ASCII
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        for i in range(len(positions)):
            tw.write(arr[i], photometric="minisblack", description=xml if i == 0 else None, metadata=None)
    return buf.getvalue()


def imagej_tiff_bytes(*, um: float = 0.25) -> bytes:
    arr = gradient(rgb=False, dtype=np.uint8)
    return tiff_bytes(arr, imagej=True, resolution=(1.0 / um, 1.0 / um), metadata={"unit": "micron"})


def tiff_cm_resolution_bytes(*, um: float = 0.5) -> bytes:
    arr = gradient(rgb=False)
    per_cm = 10000.0 / um
    return tiff_bytes(arr, photometric="minisblack", resolution=(per_cm, per_cm), resolutionunit="CENTIMETER",
                      metadata=None)


def png_phys_bytes(*, um: float = 0.4) -> bytes:
    """A PNG with a pHYs chunk in pixels per metre (Pillow writes it from dpi)."""
    raw = png_bytes()
    ppm = round(1e6 / um)
    body = struct.pack(">IIB", ppm, ppm, 1)
    chunk = struct.pack(">I", 9) + b"pHYs" + body + struct.pack(">I", zlib.crc32(b"pHYs" + body))
    return raw[:33] + chunk + raw[33:]


def jpeg_density_bytes(*, um: float = 0.5) -> bytes:
    dpcm = round(10000.0 / um)
    data = bytearray(jpeg_bytes())
    # JFIF APP0 is at offset 2: FFE0 len(2) "JFIF\0" ver(2) units(1) Xdensity(2) Ydensity(2)
    assert data[6:11] == b"JFIF\x00"
    data[13] = 2
    data[14:16] = dpcm.to_bytes(2, "big")
    data[16:18] = dpcm.to_bytes(2, "big")
    return bytes(data)


def jpeg_72dpi_bytes() -> bytes:
    return jpeg_bytes(dpi=(72, 72))


def exif_jpeg_bytes() -> bytes:
    """A JPEG whose EXIF holds a camera serial, dates, GPS and an artist, plus an XMP packet and a comment."""
    im = PILImage.fromarray(gradient())
    exif = PILImage.Exif()
    exif[0x013B] = "Dr Jane Identifiable"  # Artist
    exif[0x0132] = "2023:04:05 10:11:12"  # DateTime
    exif[0x010F] = "CamMaker"
    exif[0x0110] = "CamModel X"
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0xA431] = "SN-CAM-99817"  # BodySerialNumber
    exif_ifd[0x9003] = "2023:04:05 10:11:12"  # DateTimeOriginal
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 8.0, 13.7554)
    gps[27] = "GPSLATREF 48.137154"  # GPSProcessingMethod, a plain marker for the byte search
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif, comment=b"Dr Jane Identifiable", quality=90,
            xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">SN-CAM-99817</x:xmpmeta>')
    return buf.getvalue()


def text_png_bytes() -> bytes:
    """A PNG with tEXt, zTXt and iTXt chunks naming a person, a serial and a date, and EXIF."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Dr Jane Identifiable")
    info.add_text("Serial", "SN-CAM-99817", zip=True)
    info.add_itxt("CreationTime", "2023:04:05 10:11:12", lang="en", tkey="Created")
    info.add_text("Location", "GPSLATREF 48.137154")
    exif = PILImage.Exif()
    exif[0x013B] = "Dr Jane Identifiable"
    return png_bytes(pnginfo=info, exif=exif)


def polyglot_png_zip_bytes() -> bytes:
    """A valid PNG followed by a ZIP archive (opens as an image and as an archive)."""
    zbuf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("payload.txt", "not an image")
    return png_bytes() + zbuf.getvalue()


def polyglot_jpeg_html_bytes() -> bytes:
    """A JPEG with HTML/script in a comment segment (a JPEG/HTML polyglot)."""
    return jpeg_bytes(comment=b"<html><script>alert(1)</script></html>")


def truncated_jpeg_bytes() -> bytes:
    data = jpeg_bytes(gradient(240, 320))
    return data[: len(data) // 2]


def bomb_png_bytes(side: int = 30000) -> bytes:
    """A tiny, structurally complete PNG whose header claims side x side pixels (never allocated)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)  # far too little data: never decoded, refused from the header
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def non_image_bytes() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
