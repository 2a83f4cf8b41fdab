"""``SessionOutput`` renders its fields directly (the session list's hot path): the output must stay
exactly what DRF's field-by-field rendering of the declared fields gives."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rest_framework import serializers

from portal.imaging.api import SessionOutput
from portal.imaging.models import ImageSession
from portal.imaging.selectors import session_list
from portal.testing.review import make_image, make_session


def _drf(session) -> dict:
    return serializers.Serializer.to_representation(SessionOutput(), session)


@pytest.mark.django_db
def test_session_output_renders_like_drf(cast, storage):
    plain = make_session(cast.a)
    odd = make_session(cast.a, microscope="Zeiss ü", objective="63x", um_per_px=0.125, stage_flip_x=True,
                       stage_rotation=270, notes="two\nlines")
    ImageSession.objects.filter(pk=odd.pk).update(frozen_at=datetime(2024, 6, 1, 8, 30, 5, 123456, tzinfo=UTC),
                                                  frozen_reason="validation study opened")
    make_image(cast.a, session=odd, width=64, height=48)
    make_image(cast.a, session=odd, width=64, height=48)
    listed = {s.pk: s for s in session_list(user=cast.a.uploader)}
    assert listed[odd.pk].image_count == 2 and listed[plain.pk].image_count == 0
    for session in [*listed.values(), ImageSession.objects.get(pk=odd.pk), plain]:
        fast = SessionOutput(session).data
        assert fast == _drf(session)
        assert list(fast) == list(_drf(session))  # same keys in the same order
    assert "image_count" not in SessionOutput(plain).data  # a single session has no count, as before
