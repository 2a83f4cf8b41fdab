from django.urls import reverse


def test_it_lists_only_the_users_own_centers_with_roles(client, cast, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client.force_login(cast.a.uploader)
    body = client.get(reverse("api-center-list")).json()
    assert body == [{"id": str(cast.a.center.pk), "code": "CA", "name": "Center CA", "time_zone": "UTC",
                     "roles": ["uploader"]}]


def test_it_refuses_other_centers_detail_with_404(client, cast):
    client.force_login(cast.a.admin)
    assert client.get(reverse("api-center-detail", kwargs={"pk": cast.b.center.pk})).status_code == 404
    assert client.get(reverse("api-center-detail", kwargs={"pk": cast.a.center.pk})).json()["roles"] == ["center_admin"]


def test_an_auditor_belongs_to_no_center(client, cast):
    client.force_login(cast.auditor)
    assert client.get(reverse("api-center-list")).json() == []
