"""One definition of the cells to review (drawn cells and detections at or above the reviewer's threshold):
the viewer's payload, the session page and the analysis line count the same cells."""
from __future__ import annotations

import re

from django.urls import reverse

from portal.imaging.models import ImageStatus
from portal.results.models import Detection
from portal.review.tests.conftest import client_for
from portal.testing.review import make_image, make_reviewable_image


def _page(user, session_id) -> str:
    return client_for(user).get(reverse("review:session-detail", kwargs={"pk": session_id})).content.decode()


def _cells_on_page(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<span class="cells-to-review">(\d+)</span>', html)]


def test_the_session_page_counts_the_cells_at_the_reviewers_threshold(cast):
    image = make_reviewable_image(cast.a, n=12)
    scores = list(Detection.objects.filter(result_set__image=image).values_list("score", flat=True))
    above = lambda t: sum(1 for s in scores if s >= t)  # noqa: E731
    assert 0 < above(0.5) < len(scores)
    assert _cells_on_page(_page(cast.a.reviewer, image.session_id)) == [above(0.5)]

    client = client_for(cast.a.reviewer)
    r = client.put(reverse("api-review-threshold"), {"threshold": 0.2}, format="json")
    assert r.status_code == 200 and r.json() == {"threshold": 0.2}
    html = client.get(reverse("review:session-detail", kwargs={"pk": image.session_id})).content.decode()
    assert _cells_on_page(html) == [above(0.2)]
    payload = client.get(reverse("api-review-image", kwargs={"image_id": image.pk})).json()
    assert payload["review"] == {"threshold": 0.2}


def test_the_threshold_is_refused_outside_zero_to_one(cast):
    r = client_for(cast.a.reviewer).put(reverse("api-review-threshold"), {"threshold": 1.5}, format="json")
    assert r.status_code == 400


def test_the_analysis_line_counts_the_whole_session_not_only_the_latest_job(cast):
    image = make_reviewable_image(cast.a, n=3)
    make_image(cast.a, session=image.session, status=ImageStatus.QUEUED)
    html = _page(cast.a.reviewer, image.session_id)
    assert "1 of 2 images analyzed" in html and "1 queued or analyzing" in html
