"""``portal.lib.zipstream``: members copied chunk by chunk (stored), their sha256 returned."""
from __future__ import annotations

import hashlib
import io
import os
import zipfile

from portal.lib.zipstream import CHUNK_BYTES, zip_copy, zip_spool


def test_a_member_is_copied_whole_with_its_sha256_and_the_spool_reads_back():
    data = os.urandom(2 * CHUNK_BYTES + 17)  # more than one chunk, and a partial last one
    with zip_spool() as spool:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            digest = zip_copy(archive, "images/a.png", io.BytesIO(data), size=len(data))
            archive.writestr("annotations.json", "{}")
        spool.seek(0)
        with zipfile.ZipFile(spool) as archive:
            assert archive.read("images/a.png") == data
            assert archive.getinfo("images/a.png").compress_type == zipfile.ZIP_STORED
            assert archive.testzip() is None
    assert digest == hashlib.sha256(data).hexdigest()
