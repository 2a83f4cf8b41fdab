"""Validating, measuring and re-encoding uploaded microscope images (no Django here).

The pipeline for one uploaded file (``inspect_upload``), in this order:

1. **Size**: empty files and files over ``max_file_bytes`` are refused before anything is parsed.
2. **Magic bytes** decide the format (PNG, JPEG, TIFF incl. BigTIFF, BMP); the file name's extension must
   name the same format (a JPEG called ``.png`` is refused), so what a browser or OS assumes from the name
   matches what we decode.
3. **Header-first limits**: width x height of every page (from the header only: Pillow's lazy open,
   tifffile's IFDs) and the page count are checked against ``max_pixels`` (the sum over pages) and
   ``max_pages`` before any pixel is decoded, so a decompression bomb is refused without allocating it;
   a page under ``min_side`` pixels on either side is refused (too small to analyse).
4. **Structure**: PNG chunks are walked (CRC-checked) to ``IEND``, JPEG markers to ``EOI``, BMP to its
   declared size; bytes after the image's end mean a *polyglot* and are refused, and so do HTML/script/PHP
   markers anywhere outside the compressed pixel data (see ``check_structure``).
5. **Metadata read before stripping**: pixel size (OME-TIFF ``Pixels@PhysicalSizeX`` + unit, ImageJ
   ``unit=`` + XResolution, TIFF ResolutionUnit cm/inch, PNG ``pHYs``, JPEG JFIF/EXIF density) and OME
   stage position (``Plane@PositionX/Y``). Values outside ``[um_min, um_max]`` are treated as absent.
6. **Full decode** of every page (truncated or corrupt data raise here and the file is refused).
7. **Re-encoding from pixels**: 8-bit pages become PNG, 16-bit pages TIFF (deflate) holding only the
   structural tags; no EXIF, XMP, ICC, text chunks, descriptions, dates or software tags survive.
8. **Display view** (8-bit, shown in the viewer): the one pixel rule of ``inference.pixels`` (the rule
   the model's input follows too): 8-bit pixels as they are (window 0-255); >8-bit pixels mapped
   linearly from ``[0, 2**b - 1]`` (the camera bit depth that holds the 99.9th percentile) to 0..255.
   The window is returned so it is stored with the image.
"""
from __future__ import annotations

import io
import re
import unicodedata
import warnings
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image as PILImage
from PIL import ImageFile

from inference import pixels as pixels_rule

ImageFile.LOAD_TRUNCATED_IMAGES = False

FORMAT_EXTENSIONS = {
    "PNG": {".png"},
    "JPEG": {".jpg", ".jpeg", ".jpe", ".jfif"},
    "TIFF": {".tif", ".tiff"},
    "BMP": {".bmp", ".dib"},
}
PRIMARY_EXTENSION = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "BMP": ".bmp"}
ALL_EXTENSIONS = sorted(set().union(*FORMAT_EXTENSIONS.values()))
ACTIVE_CONTENT = (b"<script", b"<html", b"<?php", b"<!doctype html", b"<iframe", b"<svg", b"javascript:",
                  b"<body")
THUMBNAIL_MAX_SIDE = 256
MIN_SIDE_PX = 32  # smaller images cannot hold a cell the detector could find


class UploadRefused(Exception):
    """The file is refused; ``reason`` says why in words meant for the uploader."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Page:
    """One decoded page: pixels (H, W) or (H, W, 3), uint8 or uint16, plus what the file said about it."""

    index: int
    pixels: np.ndarray
    um_per_px: float | None = None
    um_per_px_source: str = "none"
    stage_x_um: float | None = None
    stage_y_um: float | None = None

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def channels(self) -> int:
        return 1 if self.pixels.ndim == 2 else self.pixels.shape[2]


@dataclass
class Inspected:
    format: str
    pages: list[Page] = field(default_factory=list)


@dataclass
class Encoded:
    stored_bytes: bytes
    stored_ext: str
    display_bytes: bytes
    thumbnail_bytes: bytes
    window_low: float
    window_high: float


# --- format and structure -----------------------------------------------------------------------

def sniff_format(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if data.startswith(b"BM") and len(data) >= 26:
        return "BMP"
    return None


def _extension(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


PNG_TEXT_CHUNKS = (b"zTXt", b"iTXt", b"iCCP")  # compressed metadata: searched after decompression
TEXT_DECOMPRESS_MAX = 4 * 1024 * 1024


def _png_compressed_text(ctype: bytes, body: bytes) -> bytes:
    """The decompressed part of a zTXt/iTXt/iCCP chunk (b"" when it holds none), at most 4 MiB."""
    keyword_end = body.find(b"\x00")
    if keyword_end < 0:
        return b""
    if ctype == b"iTXt":
        if len(body) < keyword_end + 3 or body[keyword_end + 1] != 1:
            return b""  # an uncompressed iTXt is searched as it is
        rest = body[keyword_end + 3:]
        for _ in range(2):  # language tag and translated keyword, each NUL-terminated
            cut = rest.find(b"\x00")
            if cut < 0:
                return b""
            rest = rest[cut + 1:]
        compressed = rest
    else:
        compressed = body[keyword_end + 2:]
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(compressed, TEXT_DECOMPRESS_MAX)
    except zlib.error as exc:
        raise UploadRefused(f"the PNG's {ctype.decode()} chunk is corrupt ({_short(exc)})") from exc
    if inflater.unconsumed_tail:
        raise UploadRefused(f"the PNG's {ctype.decode()} chunk holds more than {TEXT_DECOMPRESS_MAX:,} bytes")
    return text


def _png_walk(data: bytes) -> dict:
    """Walk and CRC-check the chunks to ``IEND``.

    Returns ``{"end": offset after IEND, "phys": (ppux, ppuy, unit) | None, "pixel_ranges": [(start,
    stop), ...] of IDAT bodies (compressed pixels), "texts": [decompressed zTXt/iTXt/iCCP bodies]}``.
    """
    pos, phys, pixel_ranges, texts = 8, None, [], []
    while True:
        if pos + 8 > len(data):
            raise UploadRefused("the PNG is truncated (no IEND chunk)")
        length = int.from_bytes(data[pos:pos + 4], "big")
        ctype = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if length > 2**31 or end > len(data):
            raise UploadRefused("the PNG is truncated or corrupt (a chunk runs past the end of the file)")
        body = data[pos + 8:pos + 8 + length]
        if zlib.crc32(ctype + body) != int.from_bytes(data[end - 4:end], "big"):
            name = ctype.decode("ascii", "replace") if ctype.isalpha() else "a"
            raise UploadRefused(f"the PNG is corrupt ({name} chunk has a wrong CRC checksum)")
        if ctype == b"pHYs" and length == 9:
            phys = (int.from_bytes(body[0:4], "big"), int.from_bytes(body[4:8], "big"), body[8])
        elif ctype == b"IDAT":
            pixel_ranges.append((pos + 8, pos + 8 + length))
        elif ctype in PNG_TEXT_CHUNKS:
            texts.append(_png_compressed_text(ctype, body))
        pos = end
        if ctype == b"IEND":
            return {"end": pos, "phys": phys, "pixel_ranges": pixel_ranges, "texts": texts}


def _jpeg_walk(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """Offset just after the EOI marker and the ranges of entropy-coded (compressed pixel) data."""
    pos, n, scans = 2, len(data), []
    while pos < n:
        if data[pos] != 0xFF:
            raise UploadRefused("the JPEG is corrupt (expected a marker)")
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return pos, scans
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:
            continue
        if pos + 2 > n:
            break
        seglen = int.from_bytes(data[pos:pos + 2], "big")
        pos += seglen
        if marker == 0xDA:  # start of scan: skip entropy-coded data to the next real marker
            start = pos
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    raise UploadRefused("the JPEG is truncated (no end-of-image marker)")
                nxt = data[pos + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    pos += 1 if nxt == 0xFF else 2
                    continue
                break
            scans.append((start, pos))
    raise UploadRefused("the JPEG is truncated (no end-of-image marker)")


def _tiff_pixel_ranges(data: bytes) -> list[tuple[int, int]]:
    """The byte ranges of every page's strips or tiles (compressed pixels)."""
    import tifffile

    ranges = []
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tf:
            for page in tf.pages:
                for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False):
                    if count:
                        ranges.append((int(offset), int(offset) + int(count)))
    except UploadRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - every parser error means a corrupt directory
        raise UploadRefused(f"the TIFF directory is corrupt ({_short(exc)})") from exc
    return ranges


def _bmp_pixel_ranges(data: bytes) -> list[tuple[int, int]]:
    offset = int.from_bytes(data[10:14], "little")
    size = int.from_bytes(data[34:38], "little") if len(data) >= 38 else 0
    stop = offset + size if size else len(data)
    return [(offset, min(stop, len(data)))] if 14 <= offset < len(data) else []


def _check_trailer(data: bytes, end: int, fmt: str) -> None:
    trailer = data[end:]
    if trailer.strip(b"\x00\r\n\t ") != b"":
        raise UploadRefused(
            f"{len(trailer)} bytes follow the end of the {fmt} image (a polyglot file, e.g. an image with "
            "an archive or a script appended)"
        )


def _outside(data: bytes, ranges: list[tuple[int, int]]):
    """The parts of ``data`` outside ``ranges`` (each yielded on its own, so no marker spans a gap)."""
    pos = 0
    for start, stop in sorted(ranges):
        if start > pos:
            yield data[pos:start]
        pos = max(pos, stop)
    if pos < len(data):
        yield data[pos:]


def _check_active_content(parts) -> None:
    for part in parts:
        lowered = part.lower()
        for marker in ACTIVE_CONTENT:
            if marker in lowered:
                raise UploadRefused(
                    f"the file contains {marker.decode()!r}: a polyglot (image and web content in one file)"
                )


def check_structure(data: bytes, fmt: str) -> dict:
    """Walk the container; refuse trailing data and HTML/script markers outside the compressed pixels.

    Only what a browser or another program could read as text is searched: headers, metadata
    chunks/segments/tags (compressed PNG text decompressed), gaps and trailing bytes. The compressed
    pixel data (PNG IDAT, JPEG scans, TIFF strips/tiles, BMP pixel array) is not: random bytes contain
    ``<svg`` in about 4% of 20 MB files.
    """
    info: dict = {}
    texts: list[bytes] = []
    if fmt == "PNG":
        info = _png_walk(data)
        _check_trailer(data, info["end"], fmt)
        pixel_ranges, texts = info["pixel_ranges"], info["texts"]
    elif fmt == "JPEG":
        end, pixel_ranges = _jpeg_walk(data)
        _check_trailer(data, end, fmt)
    elif fmt == "BMP":
        declared = int.from_bytes(data[2:6], "little")
        if declared and declared < len(data) and len(data) - declared > 4:
            _check_trailer(data, declared, fmt)
        pixel_ranges = _bmp_pixel_ranges(data)
    else:
        if data.find(b"PK\x03\x04", 0, 4096) >= 0:
            raise UploadRefused("the TIFF contains an embedded ZIP archive header (a polyglot file)")
        pixel_ranges = _tiff_pixel_ranges(data)
    _check_active_content(_outside(data, pixel_ranges))
    _check_active_content(texts)
    return info


# --- pixel size ----------------------------------------------------------------------------------

_UNIT_UM = {
    "m": 1e6, "cm": 1e4, "mm": 1e3, "µm": 1.0, "μm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0,
    "micrometer": 1.0, "micrometre": 1.0, "nm": 1e-3, "å": 1e-4, "Å": 1e-4, "pm": 1e-6,
    "\\u00b5m": 1.0,
}


def unit_to_um(unit: str | None, default: float | None = 1.0) -> float | None:
    if unit is None or unit == "":
        return default
    return _UNIT_UM.get(unit.strip(), _UNIT_UM.get(unit.strip().lower()))


def plausible(value: float | None, lo: float, hi: float) -> float | None:
    if value is None or not np.isfinite(value) or not (lo <= value <= hi):
        return None
    return float(value)


def _rational(value) -> float | None:
    try:
        if isinstance(value, tuple):
            num, den = value
            return num / den if den else None
        return float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_ome(xml: str) -> dict:
    """PhysicalSizeX (µm) and per-plane PositionX/Y (µm) from OME-XML."""
    out: dict = {"um_per_px": None, "planes": []}
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return out
    pixels = next((el for el in root.iter() if _local(el.tag) == "Pixels"), None)
    if pixels is None:
        return out
    size = pixels.get("PhysicalSizeX")
    factor = unit_to_um(pixels.get("PhysicalSizeXUnit"), 1.0)
    if size is not None and factor is not None:
        try:
            out["um_per_px"] = float(size) * factor
        except ValueError:
            pass
    for plane in (el for el in pixels.iter() if _local(el.tag) == "Plane"):
        pos = []
        for axis in ("X", "Y"):
            value = plane.get(f"Position{axis}")
            f = unit_to_um(plane.get(f"Position{axis}Unit"), 1.0)
            try:
                pos.append(float(value) * f if value is not None and f is not None else None)
            except ValueError:
                pos.append(None)
        out["planes"].append(tuple(pos))
    return out


def _tiff_resolution_um(page) -> float | None:
    tags = page.tags
    if "XResolution" not in tags or "ResolutionUnit" not in tags:
        return None
    unit = int(tags["ResolutionUnit"].value)
    per_unit = _rational(tags["XResolution"].value)
    if not per_unit:
        return None
    if unit == 2:
        return 25400.0 / per_unit
    if unit == 3:
        return 10000.0 / per_unit
    return None


# --- decoding ------------------------------------------------------------------------------------

def _normalize(arr: np.ndarray, where: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
        arr = np.moveaxis(arr, 0, -1)  # planar RGB
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]  # alpha dropped
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise UploadRefused(f"{where}: unsupported pixel layout {tuple(arr.shape)} (expected gray or RGB)")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 1:
        return np.ascontiguousarray(arr, dtype=np.uint8)
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:
        return np.ascontiguousarray(arr, dtype=np.uint16)
    raise UploadRefused(f"{where}: unsupported sample type {arr.dtype} (8- or 16-bit unsigned integers only)")


def _pil_to_array(im: PILImage.Image, where: str) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return _normalize(np.array(im, dtype=np.uint16), where)
    if mode == "I":
        arr = np.array(im)
        if arr.min() < 0 or arr.max() > 65535:
            raise UploadRefused(f"{where}: 32-bit samples are not supported")
        return _normalize(arr.astype(np.uint16), where)
    if mode == "1":
        return _normalize(np.array(im.convert("L")), where)
    if mode in ("L", "RGB"):
        return _normalize(np.array(im), where)
    if mode in ("LA",):
        return _normalize(np.array(im.convert("L")), where)
    if mode in ("P", "PA", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return _normalize(np.array(im.convert("RGB")), where)
    raise UploadRefused(f"{where}: unsupported image mode {mode}")


def _limits(sizes: list[tuple[int, int]], *, max_pixels: int, max_pages: int) -> None:
    if len(sizes) > max_pages:
        raise UploadRefused(f"{len(sizes)} pages exceed the limit of {max_pages} pages per file")
    total = 0
    for w, h in sizes:
        if w <= 0 or h <= 0:
            raise UploadRefused("the header declares an empty image")
        total += int(w) * int(h)
    if total > max_pixels:
        dims = f"{sizes[0][0]}x{sizes[0][1]}" + (f" x {len(sizes)} pages" if len(sizes) > 1 else "")
        raise UploadRefused(
            f"{dims} = {total:,} pixels exceeds the limit of {max_pixels:,} pixels (decompression bomb?)"
        )


def _minimum_size(sizes: list[tuple[int, int]], min_side: int) -> None:
    for i, (w, h) in enumerate(sizes):
        if w < min_side or h < min_side:
            where = f"page {i + 1} is " if len(sizes) > 1 else ""
            raise UploadRefused(
                f"{where}{w}x{h} pixels is too small to analyse (at least {min_side} pixels on each side)"
            )


def _inspect_pillow(data: bytes, fmt: str, info: dict, *, max_pixels, max_pages, um_min, um_max) -> list[Page]:
    with warnings.catch_warnings():
        # Our own limit was checked from the header; Pillow's warning threshold is not ours.
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        try:
            im = PILImage.open(io.BytesIO(data))
            if im.format != fmt:
                raise UploadRefused(f"the content decodes as {im.format}, not {fmt}")
            frames = getattr(im, "n_frames", 1)
            if frames != 1:
                raise UploadRefused(f"animated or multi-frame {fmt} files are not accepted")
            _limits([im.size], max_pixels=max_pixels, max_pages=max_pages)
            um, source = None, "none"
            if fmt == "PNG" and info.get("phys"):
                ppx, _ppy, unit = info["phys"]
                if unit == 1 and ppx:
                    um, source = 1e6 / ppx, "png_phys"
            elif fmt == "JPEG":
                unit, density = im.info.get("jfif_unit"), im.info.get("jfif_density")
                if density and unit in (1, 2) and density[0]:
                    um, source = (25400.0 if unit == 1 else 10000.0) / density[0], "jpeg_density"
                else:
                    exif = im.getexif()
                    xres, runit = _rational(exif.get(282)), exif.get(296)
                    if xres and runit in (2, 3):
                        um, source = (25400.0 if runit == 2 else 10000.0) / xres, "jpeg_density"
            if plausible(um, um_min, um_max) is None:
                um, source = None, "none"
            im.load()
            pixels = _pil_to_array(im, "page 1")
        except UploadRefused:
            raise
        except PILImage.DecompressionBombError as exc:
            raise UploadRefused(f"decompression bomb refused: {exc}") from exc
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct_error()) as exc:
            raise UploadRefused(f"the {fmt} data is truncated or corrupt ({_short(exc)})") from exc
    return [Page(index=0, pixels=pixels, um_per_px=um, um_per_px_source=source)]


def struct_error():
    import struct

    return struct.error


_OBJECT_REPR = re.compile(r"<[^<>]* object at 0x[0-9a-fA-F]+>")


def _short(exc: BaseException) -> str:
    """The exception's message for the uploader: no object reprs, at most 160 characters."""
    text = _OBJECT_REPR.sub("the file", str(exc)) or type(exc).__name__
    return text if len(text) < 160 else text[:157] + "..."


def _inspect_tiff(data: bytes, *, max_pixels, max_pages, um_min, um_max) -> list[Page]:
    import tifffile

    try:
        tf = tifffile.TiffFile(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - tifffile raises many types on corrupt headers
        raise UploadRefused(f"the TIFF header is corrupt ({_short(exc)})") from exc
    with tf:
        try:
            pages = list(tf.pages)
        except Exception as exc:  # noqa: BLE001
            raise UploadRefused(f"the TIFF directory is corrupt ({_short(exc)})") from exc
        if not pages:
            raise UploadRefused("the TIFF has no pages")
        # Header-only dimensions first: nothing is decoded before this check.
        if len(pages) > max_pages:
            raise UploadRefused(f"{len(pages)} pages exceed the limit of {max_pages} pages per file")
        _limits([(int(p.imagewidth), int(p.imagelength)) for p in pages], max_pixels=max_pixels, max_pages=max_pages)
        for p in pages:
            if getattr(p, "imagedepth", 1) > 1:
                raise UploadRefused("volumetric TIFF pages (image depth > 1) are not supported")

        um, source, planes = None, "none", []
        if tf.is_ome and tf.ome_metadata:
            ome = parse_ome(tf.ome_metadata)
            um, source, planes = ome["um_per_px"], "ome_tiff", ome["planes"]
            if plausible(um, um_min, um_max) is None:
                um, source = None, "none"
        if um is None and tf.is_imagej:
            meta = tf.imagej_metadata or {}
            factor = unit_to_um(meta.get("unit"), None)
            per_unit = _rational(pages[0].tags["XResolution"].value) if "XResolution" in pages[0].tags else None
            if factor and per_unit:
                um, source = factor / per_unit, "imagej_tiff"
                if plausible(um, um_min, um_max) is None:
                    um, source = None, "none"
        if um is None:
            um = _tiff_resolution_um(pages[0])
            source = "tiff_resolution" if plausible(um, um_min, um_max) is not None else "none"
            if source == "none":
                um = None

        result = []
        for i, page in enumerate(pages):
            where = f"page {i + 1}"
            try:
                arr = page.asarray()
            except KeyError as exc:  # a codec tifffile lacks (e.g. LZW without imagecodecs): use Pillow
                arr = _tiff_page_with_pillow(data, i, where, exc)
            except Exception as exc:  # noqa: BLE001
                raise UploadRefused(f"{where}: the TIFF data is truncated or corrupt ({_short(exc)})") from exc
            pixels = _normalize(arr, where)
            sx = sy = None
            if planes:
                plane = planes[i] if len(planes) == len(pages) else planes[0]
                sx, sy = plane
            result.append(Page(index=i, pixels=pixels, um_per_px=um, um_per_px_source=source,
                               stage_x_um=sx, stage_y_um=sy))
        return result


def _tiff_page_with_pillow(data: bytes, index: int, where: str, cause: Exception) -> np.ndarray:
    try:
        im = PILImage.open(io.BytesIO(data))
        im.seek(index)
        im.load()
        return _pil_to_array(im, where)
    except UploadRefused:
        raise
    except Exception as exc:  # noqa: BLE001
        raise UploadRefused(f"{where}: cannot decode this TIFF compression ({_short(cause)})") from exc


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise UploadRefused("the JPEG header is corrupt (expected a marker)")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        seglen = int.from_bytes(data[pos + 2:pos + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > n:
                break
            height = int.from_bytes(data[pos + 5:pos + 7], "big")
            width = int.from_bytes(data[pos + 7:pos + 9], "big")
            return width, height
        if marker in (0xDA, 0xD9):
            break
        pos += 2 + seglen
    raise UploadRefused("the JPEG header is truncated (no frame header with the image size)")


def header_sizes(data: bytes, fmt: str) -> list[tuple[int, int]]:
    """Width and height of every page, parsed from the header only (no pixel is decoded)."""
    if fmt == "PNG":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise UploadRefused("the PNG header is truncated (no IHDR chunk)")
        return [(int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))]
    if fmt == "JPEG":
        return [_jpeg_size(data)]
    if fmt == "BMP":
        header = int.from_bytes(data[14:18], "little")
        if header == 12:
            return [(int.from_bytes(data[18:20], "little"), int.from_bytes(data[20:22], "little"))]
        w = int.from_bytes(data[18:22], "little", signed=True)
        h = int.from_bytes(data[22:26], "little", signed=True)
        return [(abs(w), abs(h))]
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tf:
            return [(int(p.imagewidth), int(p.imagelength)) for p in tf.pages]
    except Exception as exc:  # noqa: BLE001 - every parser error means a corrupt header
        raise UploadRefused(f"the TIFF header is corrupt or truncated ({_short(exc)})") from exc


def inspect_upload(
    data: bytes, filename: str, *, max_file_bytes: int, max_pixels: int, max_pages: int,
    um_min: float = 0.02, um_max: float = 5.0, min_side: int = MIN_SIDE_PX,
) -> Inspected:
    """Validate one uploaded file and decode its pages; raise ``UploadRefused`` with the reason."""
    if len(data) == 0:
        raise UploadRefused("the file is empty")
    if len(data) > max_file_bytes:
        raise UploadRefused(f"{len(data):,} bytes exceed the limit of {max_file_bytes:,} bytes per file")
    fmt = sniff_format(data)
    if fmt is None:
        if len(data) < 16:
            raise UploadRefused(f"only {len(data)} byte(s): not an image")
        raise UploadRefused("not a PNG, JPEG, TIFF or BMP image (unrecognised content)")
    ext = _extension(filename)
    if ext not in FORMAT_EXTENSIONS[fmt]:
        raise UploadRefused(
            f"the content is {fmt} but the name ends in {ext or '(no extension)'!r}; "
            f"rename it to {PRIMARY_EXTENSION[fmt]!r} or check the file"
        )
    sizes = header_sizes(data, fmt)
    _limits(sizes, max_pixels=max_pixels, max_pages=max_pages)
    _minimum_size(sizes, min_side)
    info = check_structure(data, fmt)
    limits = {"max_pixels": max_pixels, "max_pages": max_pages, "um_min": um_min, "um_max": um_max}
    if fmt == "TIFF":
        pages = _inspect_tiff(data, **limits)
    else:
        pages = _inspect_pillow(data, fmt, info, **limits)
    return Inspected(format=fmt, pages=pages)


# --- encoding -----------------------------------------------------------------------------------

def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    if arr.dtype == np.uint16:
        im = PILImage.fromarray(arr.astype("<u2"), mode="I;16") if arr.ndim == 2 else None
    else:
        im = PILImage.fromarray(arr, mode="L" if arr.ndim == 2 else "RGB")
    im.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _tiff_bytes(arr: np.ndarray) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(
        buf, arr, photometric="minisblack" if arr.ndim == 2 else "rgb", compression="zlib",
        metadata=None, software=False, resolution=None,
    )
    return buf.getvalue()


def encode_page(page: Page) -> Encoded:
    """Stored bytes (metadata-free), the 8-bit display PNG and a thumbnail, plus the display window."""
    if page.pixels.dtype == np.uint16:
        stored, ext = _tiff_bytes(page.pixels), ".tiff"
    else:
        stored, ext = _png_bytes(page.pixels), ".png"
    display, (low, high) = pixels_rule.to_8bit(page.pixels)
    thumb = PILImage.fromarray(display, mode="L" if display.ndim == 2 else "RGB")
    thumb.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE))
    tbuf = io.BytesIO()
    thumb.save(tbuf, format="PNG")
    return Encoded(stored_bytes=stored, stored_ext=ext, display_bytes=_png_bytes(display),
                   thumbnail_bytes=tbuf.getvalue(), window_low=low, window_high=high)


def original_file_name(filename: str, *, max_length: int = 200) -> str:
    """The base name of an uploaded file as the clinic wrote it (any script), without folders or control
    characters, cut to ``max_length``; what the owning center sees again (escaped wherever it is shown)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C")).strip()
    return name[:max_length]


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ ()+-]")


def safe_display_name(filename: str) -> str:
    """The base name of an uploaded file, made safe to echo back in messages (never stored)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _SAFE_NAME.sub("_", name)[:120]
    return name or "(unnamed)"
