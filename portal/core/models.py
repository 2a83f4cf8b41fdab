"""Abstract bases shared by the portal's models."""
from __future__ import annotations

import uuid

from django.db import models


class UUIDModel(models.Model):
    """A model whose primary key is a random UUID, so ids in URLs cannot be guessed or enumerated."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
