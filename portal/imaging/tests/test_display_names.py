"""The clinic's file names: kept at upload, shown to the owning center only (``display_name_for``)."""
from __future__ import annotations

from django.urls import reverse

from portal.centers.services import membership_grant
from portal.imaging.lib.imagefile import original_file_name
from portal.imaging.models import SessionBlinding
from portal.imaging.selectors import display_name_for, display_names_for
from portal.imaging.services import images_upload
from portal.testing.imaging import make_session, png_upload


def _upload(cast, name):
    session = make_session(cast.a)
    result = images_upload(session=session, files=[png_upload(name)], user=cast.a.uploader)
    assert not result.errors
    return result.created[0]


def test_it_keeps_the_uploaded_file_name_without_folders(cast):
    image = _upload(cast, "C:\\scope\\患者 field 07.png")
    assert image.original_name == "患者 field 07.png"


def test_the_file_name_loses_control_characters_and_is_cut_to_the_field():
    assert original_file_name("a\x00b\nc.tif") == "abc.tif"
    assert len(original_file_name("x" * 500 + ".tif", max_length=200)) == 200


def test_the_owning_centers_readers_see_the_file_name(cast):
    image = _upload(cast, "field-07.png")
    for user in (cast.a.uploader, cast.a.reviewer, cast.a.admin):
        assert display_name_for(user, image) == "field-07.png"


def test_other_centers_validators_stain_technicians_and_auditors_do_not(cast):
    image = _upload(cast, "field-07.png")
    for user in (cast.b.uploader, cast.b.admin, cast.a.validator, cast.a.stain, cast.auditor):
        assert display_name_for(user, image) == ""


def test_a_reviewer_blinded_from_the_session_does_not(cast):
    image = _upload(cast, "field-07.png")
    SessionBlinding.objects.create(user=cast.a.reviewer, session=image.session, source="validation.study:test")
    assert display_name_for(cast.a.reviewer, image) == ""
    assert display_names_for(cast.a.uploader, [image]) == {image.pk: "field-07.png"}


def test_a_user_of_both_centers_sees_only_where_they_read_images(cast):
    image = _upload(cast, "field-07.png")
    membership_grant(user=cast.b.reviewer, center=cast.a.center, role="validator")
    assert display_name_for(cast.b.reviewer, image) == ""


def test_the_session_page_shows_the_name_to_its_center_only(cast, client):
    image = _upload(cast, "field-<i>07.png")
    client.force_login(cast.a.uploader)
    html = client.get(reverse("imaging:session-detail", kwargs={"pk": image.session_id})).content.decode()
    assert "field-&lt;i&gt;07.png" in html and "<i>07" not in html
    client.force_login(cast.b.uploader)
    assert client.get(reverse("imaging:session-detail", kwargs={"pk": image.session_id})).status_code == 404


def test_the_viewer_gets_the_name_in_its_context_for_the_owning_center(cast, client):
    image = _upload(cast, "field-07.png")
    client.force_login(cast.a.reviewer)
    response = client.get(reverse("review:viewer", kwargs={"image_id": image.pk}))
    assert response.context["image_display_name"] == "field-07.png"
    SessionBlinding.objects.create(user=cast.a.reviewer, session=image.session, source="validation.study:test")
    assert client.get(reverse("review:viewer", kwargs={"image_id": image.pk})).status_code == 404


def test_the_image_api_never_carries_the_name(cast, client):
    image = _upload(cast, "secret-field-07.png")
    client.force_login(cast.a.admin)
    body = client.get(reverse("api-image-detail", kwargs={"pk": image.pk})).content.decode()
    assert "secret-field-07" not in body
