"""The OpenAPI schema states what the API does: pages, errors, enums, validated filters, JSON types."""
from __future__ import annotations

import pytest
from django.urls import reverse

from portal.testing.imaging import make_imaging


@pytest.fixture
def schema(client, cast):
    client.force_login(cast.a.reviewer)
    return client.get(reverse("api-schema"), {"format": "json"}).json()


def _ref(schema, response: dict) -> dict:
    name = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    return schema["components"]["schemas"][name]


@pytest.mark.parametrize("path", ["/api/v1/patients/", "/api/v1/sessions/", "/api/v1/images/", "/api/v1/jobs/"])
def test_list_operations_are_documented_as_pages(schema, path):
    operation = schema["paths"][path]["get"]
    page = _ref(schema, operation["responses"]["200"])
    assert set(page["properties"]) == {"count", "next", "previous", "results"}
    params = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert params["page"]["minimum"] == 1
    assert (params["page_size"]["minimum"], params["page_size"]["maximum"]) == (1, 200)


def test_every_operation_documents_its_error_answers(schema):
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            expected = {"401", "403", "404", "429"} | ({"400", "409"} if method != "get" else set())
            if set(expected) - set(operation["responses"]):
                missing.append(f"{method.upper()} {path}: {sorted(expected - set(operation['responses']))}")
            error = operation["responses"]["404"]["content"]["application/json"]["schema"]["$ref"]
            assert error.endswith("/ErrorOutput")
    assert not missing


def test_filters_declare_their_formats_and_enums(schema):
    params = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/jobs/"]["get"]["parameters"]}
    assert params["session"]["format"] == "uuid"
    assert set(params["status"]["enum"]) == {"queued", "running", "succeeded", "failed", "cancelled", ""}


@pytest.mark.parametrize("url", ["/api/v1/jobs/?session=not-a-uuid", "/api/v1/images/?session=not-a-uuid",
                                 "/api/v1/sessions/?center=", "/api/v1/jobs/?status=exploded"])
def test_a_bad_filter_value_is_a_400_naming_the_parameter(client, cast, url):
    client.force_login(cast.a.uploader)
    response = client.get(url)
    assert response.status_code == 400, response.content
    name = url.split("?")[1].split("=")[0]
    assert name in response.json()["extra"]["fields"]


@pytest.mark.parametrize("value", ["0", "201", "ten"])
def test_a_bad_page_size_is_a_400(client, cast, value):
    client.force_login(cast.a.uploader)
    response = client.get("/api/v1/sessions/", {"page_size": value})
    assert response.status_code == 400
    assert "page_size" in response.json()["extra"]["fields"]


def test_a_json_value_of_the_wrong_type_is_refused_not_converted(client, cast):
    session = make_imaging(cast.a)["session"]
    client.force_login(cast.a.uploader)
    url = reverse("api-session-detail", kwargs={"pk": session.pk})
    response = client.patch(url, {"notes": 5, "stage_flip_x": "true"}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["extra"]["fields"] == {"notes": ["Expected a string."],
                                                  "stage_flip_x": ["Expected true or false."]}
    session.refresh_from_db()
    assert (session.notes, session.stage_flip_x) == ("", False)


def test_a_form_encoded_body_is_refused_with_415(client, cast):
    client.force_login(cast.a.uploader)
    response = client.post("/api/v1/patients/", {"center": str(cast.a.center.pk)})  # multipart form
    assert response.status_code == 415


def test_an_unknown_api_url_answers_json(client, cast):
    client.force_login(cast.a.uploader)
    response = client.get("/api/v1/sessions/not-a-uuid/")
    assert response.status_code == 404
    assert response.json() == {"message": "Not found.", "extra": {}}
