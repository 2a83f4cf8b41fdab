from django.urls import path

from portal.review import api

urlpatterns = [
    path("review/images/<uuid:image_id>/", api.ImageReviewApi.as_view(), name="api-review-image"),
    path("review/images/<uuid:image_id>/instances/", api.InstanceCreateApi.as_view(),
         name="api-review-instance-create"),
    path("review/instances/<uuid:detection_id>/", api.InstanceApi.as_view(), name="api-review-instance"),
    path("review/detections/<uuid:detection_id>/decision/", api.DecisionApi.as_view(), name="api-review-decision"),
    path("review/detections/<uuid:detection_id>/adjudication/", api.AdjudicationApi.as_view(),
         name="api-review-adjudication"),
    path("review/detections/<uuid:detection_id>/correction/", api.CorrectionApi.as_view(),
         name="api-review-correction"),
    path("review/detections/<uuid:detection_id>/split/", api.SplitApi.as_view(), name="api-review-split"),
    path("review/detections/<uuid:detection_id>/merge/", api.MergeApi.as_view(), name="api-review-merge"),
    path("review/images/<uuid:image_id>/done/", api.ImageDoneApi.as_view(), name="api-review-image-done"),
    path("review/threshold/", api.ReviewThresholdApi.as_view(), name="api-review-threshold"),
    path("review/coco/", api.CocoExportApi.as_view(), name="api-review-coco"),
    path("review/sessions/<uuid:session_id>/picklists/", api.PickListCreateApi.as_view(),
         name="api-review-picklist-create"),
    path("review/picklists/<uuid:pick_list_id>/", api.PickListApi.as_view(), name="api-review-picklist"),
]
