"""The scoring page's context view: the plain field of a validator's own cell and a marker on that cell only."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from portal.testing import validation as vt


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.django_db
def test_a_validator_gets_the_field_and_a_marker_on_the_cell_being_scored(cast):
    study = vt.make_open_study(cast, cast.a)
    membership = study.validators.get(user=cast.a.validator)
    cell = membership.assignments.first().cell
    client = _client(cast.a.validator)
    r = client.get(f"/api/v1/validation/my/studies/{study.pk}/cells/{cell.public_id}/context/")
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"cell", "field", "image_url", "width", "height", "um_per_px", "marker"}
    assert body["marker"] == {"x_px": round(cell.x_px), "y_px": round(cell.y_px)}
    assert body["field"] == cell.field.public_id and body["um_per_px"] == cell.field.image.um_per_px
    image = client.get(body["image_url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/png"


@pytest.mark.django_db
def test_a_picked_cells_validator_sees_only_the_fields_of_their_own_cells(cast):
    study = vt.make_open_study(cast, cast.a)
    client = _client(cast.a.validator)
    own_fields = set(study.validators.get(user=cast.a.validator).assignments.values_list("cell__field__public_id",
                                                                                         flat=True))
    for field in study.fields.all():
        expected = 200 if field.public_id in own_fields else 404
        assert client.get(f"/validation/studies/{study.pk}/fields/{field.public_id}/image.png").status_code == expected
    # a cell that is not in my list has no context for me
    other = _client(cast.a.stain)
    cell = study.cells.first()
    assert other.get(f"/api/v1/validation/my/studies/{study.pk}/cells/{cell.public_id}/context/").status_code == 404
    assert _client(cast.b.validator).get(
        f"/api/v1/validation/my/studies/{study.pk}/cells/{cell.public_id}/context/").status_code == 404
