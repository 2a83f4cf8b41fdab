"""Result reads: by center and role; validators see no detections of images in an open blinded study."""
from __future__ import annotations

from django.db.models import Count, QuerySet

from portal.centers.models import Role
from portal.centers.selectors import center_ids_for_user
from portal.core.api import DomainError
from portal.imaging.models import Image
from portal.results.models import Detection, ResultSet

RESULT_ROLES = (Role.UPLOADER, Role.REVIEWER, Role.VALIDATOR, Role.STAIN_TECHNICIAN, Role.CENTER_ADMIN)


class Blinded(DomainError):
    """A blinded validator asked for model output: answered exactly like an unknown object (404)."""

    status_code = 404


def image_is_blinded(*, user, image: Image) -> bool:
    """The validation app decides (``image_is_blinded_for``); without it nothing is blinded."""
    try:
        from portal.validation.selectors import image_is_blinded_for
    except ImportError:
        return False
    return bool(image_is_blinded_for(user, image))


def image_for_results(*, user, image_id) -> Image | None:
    """The image when the user may read its results (center and role); raises ``Blinded`` when hidden."""
    image = Image.objects.filter(pk=image_id, center_id__in=center_ids_for_user(user, RESULT_ROLES)).first()
    if image is not None and image_is_blinded(user=user, image=image):
        raise Blinded("Not found.")
    return image


def result_set_list(*, user, image: Image) -> QuerySet[ResultSet]:
    """Result sets of one image (every version: model runs and manual sets), newest first."""
    return (ResultSet.objects.filter(image=image, center_id__in=center_ids_for_user(user, RESULT_ROLES))
            .select_related("model_version").annotate(detection_count=Count("detections")))


def result_set_get(*, user, result_set_id) -> ResultSet | None:
    """One result set the user may read; raises ``Blinded`` when its image is hidden from them."""
    result_set = (ResultSet.objects.filter(pk=result_set_id, center_id__in=center_ids_for_user(user, RESULT_ROLES))
                  .select_related("image", "model_version").first())
    if result_set is not None and image_is_blinded(user=user, image=result_set.image):
        raise Blinded("Not found.")
    return result_set


def detection_list(*, result_set: ResultSet) -> QuerySet[Detection]:
    return result_set.detections.order_by("index")
