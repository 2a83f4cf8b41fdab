"""Stored images are re-encoded from pixels: no EXIF, XMP, text chunk, serial, date, GPS or name survives."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image as PILImage

from portal.imaging.models import Image
from portal.imaging.tests import corpus
from portal.testing.imaging import make_session


@pytest.mark.parametrize(("name", "make"), [("camera.jpg", corpus.exif_jpeg_bytes),
                                             ("annotated.png", corpus.text_png_bytes)])
def test_the_stored_file_has_none_of_the_originals_metadata(client, cast, settings, name, make):
    data = make()
    present = [s for s in corpus.SECRET_STRINGS if s.encode() in data]
    assert len(present) >= 3, "the corpus file must carry the identifying strings"
    with PILImage.open(__import__("io").BytesIO(data)) as original:
        assert original.getexif() or original.info.get("Author")

    session = make_session(cast.a)
    client.force_login(cast.a.uploader)
    url = reverse("api-session-image-upload", kwargs={"pk": session.pk})
    response = client.post(url, {"files": [SimpleUploadedFile(name, data)]})
    assert response.status_code == 201, response.content
    image = Image.objects.get(session=session)
    import hashlib

    assert image.original_sha256 == hashlib.sha256(data).hexdigest()  # provenance kept

    for field in (image.file, image.display_file, image.thumbnail_file):
        stored = (Path(settings.MEDIA_ROOT) / field.name).read_bytes()
        for secret in corpus.SECRET_STRINGS:
            assert secret.encode() not in stored, f"{secret!r} survived in {field.name}"
        for marker in (b"Exif", b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP", b"xmpmeta", b"tIME"):
            assert marker not in stored, f"{marker!r} chunk survived in {field.name}"
        with PILImage.open(Path(settings.MEDIA_ROOT) / field.name) as im:
            assert not im.getexif(), "EXIF survived"
            assert not {"exif", "xmp", "icc_profile", "Author", "Serial", "CreationTime", "Location",
                        "comment", "XML:com.adobe.xmp"} & set(im.info)
            assert getattr(im, "text", {}) == {}

    # The file served for download is the stripped one.
    download = client.get(reverse("api-image-file", kwargs={"pk": image.pk}))
    body = b"".join(download.streaming_content)
    assert all(s.encode() not in body for s in corpus.SECRET_STRINGS)
