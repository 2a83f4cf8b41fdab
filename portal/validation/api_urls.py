from django.urls import path

from portal.validation import api

urlpatterns = [
    # administrators
    path("validation/studies/", api.StudyListApi.as_view(), name="api-validation-study-list"),
    path("validation/studies/<uuid:study_id>/", api.StudyDetailApi.as_view(), name="api-validation-study-detail"),
    path("validation/studies/<uuid:study_id>/validators/", api.StudyValidatorsApi.as_view(),
         name="api-validation-study-validators"),
    path("validation/studies/<uuid:study_id>/validators/<str:username>/", api.StudyValidatorDeleteApi.as_view(),
         name="api-validation-study-validator-delete"),
    path("validation/studies/<uuid:study_id>/open/", api.StudyOpenApi.as_view(), name="api-validation-study-open"),
    path("validation/studies/<uuid:study_id>/lock/", api.StudyLockApi.as_view(), name="api-validation-study-lock"),
    path("validation/studies/<uuid:study_id>/unblind/", api.StudyUnblindApi.as_view(), name="api-validation-study-unblind"),
    path("validation/studies/<uuid:study_id>/results/", api.StudyResultsApi.as_view(), name="api-validation-study-results"),
    # embryologist picks (draft, picked-cells design)
    path("validation/studies/<uuid:study_id>/fields/", api.StudyFieldsApi.as_view(), name="api-validation-study-fields"),
    path("validation/studies/<uuid:study_id>/picks/", api.StudyPicksApi.as_view(), name="api-validation-study-picks"),
    path("validation/studies/<uuid:study_id>/picks/<int:pick_id>/", api.StudyPickDeleteApi.as_view(),
         name="api-validation-study-pick-delete"),
    # validators (blinded)
    path("validation/my/studies/", api.MyStudiesApi.as_view(), name="api-validation-my-studies"),
    path("validation/my/studies/<uuid:study_id>/cells/", api.MyCellsApi.as_view(), name="api-validation-my-cells"),
    path("validation/my/studies/<uuid:study_id>/cells/<str:cell_id>/", api.MyCellApi.as_view(),
         name="api-validation-my-cell"),
    path("validation/my/studies/<uuid:study_id>/cells/<str:cell_id>/context/", api.MyCellContextApi.as_view(),
         name="api-validation-my-cell-context"),
    path("validation/my/studies/<uuid:study_id>/sign/", api.MySignApi.as_view(), name="api-validation-my-sign"),
    path("validation/my/studies/<uuid:study_id>/fields/", api.MyFieldsApi.as_view(), name="api-validation-my-fields"),
    path("validation/my/studies/<uuid:study_id>/fields/<str:field_id>/missed/", api.MyMissedCellApi.as_view(),
         name="api-validation-my-missed"),
    # stain technicians (blinded)
    path("validation/stain/studies/", api.StainStudiesApi.as_view(), name="api-validation-stain-studies"),
    path("validation/stain/studies/<uuid:study_id>/cells/", api.StainCellsApi.as_view(), name="api-validation-stain-cells"),
    path("validation/stain/studies/<uuid:study_id>/cells/<str:cell_id>/", api.StainCellApi.as_view(),
         name="api-validation-stain-cell"),
    path("validation/stain/studies/<uuid:study_id>/fields/", api.StainFieldsApi.as_view(),
         name="api-validation-stain-fields"),
    path("validation/stain/studies/<uuid:study_id>/fields/<str:field_id>/images/", api.StainImagesApi.as_view(),
         name="api-validation-stain-images"),
    path("validation/stain/studies/<uuid:study_id>/images/<uuid:stain_image_id>/", api.StainImageApi.as_view(),
         name="api-validation-stain-image"),
    path("validation/stain/studies/<uuid:study_id>/images/<uuid:stain_image_id>/registration/",
         api.StainImageRegistrationApi.as_view(), name="api-validation-stain-image-registration"),
    path("validation/stain/studies/<uuid:study_id>/import/", api.StainImportApi.as_view(),
         name="api-validation-stain-import"),
]
