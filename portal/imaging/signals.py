"""What the imaging app announces. Higher apps subscribe in their ``AppConfig.ready()``."""
from __future__ import annotations

from django.dispatch import Signal

images_stored = Signal()
"""Sent after the transaction that stored new images commits; keyword arguments ``session`` (the
``ImageSession``), ``images`` (list of ``Image``) and ``user`` (the uploader). A receiver's error is
logged and never reaches the upload."""
