"""Result reads. One object is reached through ``portal.results.access`` (center, role and blinding)."""
from __future__ import annotations

from django.db.models import Count, QuerySet

from portal.imaging.models import Image
from portal.results.models import Detection, ResultSet


def result_set_list(*, image: Image) -> QuerySet[ResultSet]:
    """Result sets of one image the caller has reached through ``access_image(action=results.read)``
    (every version: model runs and manual sets), newest first."""
    return (ResultSet.objects.filter(image=image, center_id=image.center_id)
            .select_related("model_version").annotate(detection_count=Count("detections")))


def detection_list(*, result_set: ResultSet) -> QuerySet[Detection]:
    return result_set.detections.order_by("index")
