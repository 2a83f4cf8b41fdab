from django.urls import path

from portal.validation import views

app_name = "validation"
urlpatterns = [
    path("", views.StudyIndexView.as_view(), name="index"),
    path("studies/new/", views.StudyCreateView.as_view(), name="study-create"),
    path("studies/<uuid:study_id>/", views.StudyAdminView.as_view(), name="study"),
    path("studies/<uuid:study_id>/lock/", views.StudyLockView.as_view(), name="study-lock"),
    path("studies/<uuid:study_id>/unblind/", views.StudyUnblindView.as_view(), name="study-unblind"),
    path("studies/<uuid:study_id>/pick/", views.PickView.as_view(), name="pick"),
    path("studies/<uuid:study_id>/score/", views.ScoreView.as_view(), name="score"),
    path("studies/<uuid:study_id>/missed/", views.MissedView.as_view(), name="missed"),
    path("studies/<uuid:study_id>/sign/", views.SignView.as_view(), name="sign"),
    path("studies/<uuid:study_id>/stain/", views.StainView.as_view(), name="stain"),
    path("studies/<uuid:study_id>/stain/fields/<str:field_id>/image.png", views.StainFieldImageView.as_view(),
         name="stain-field-image"),
    path("studies/<uuid:study_id>/stain/images/<uuid:stain_image_id>.png", views.StainImageView.as_view(),
         name="stain-image"),
    path("studies/<uuid:study_id>/report/", views.ReportView.as_view(), name="report"),
    path("studies/<uuid:study_id>/report.csv", views.ReportCsvView.as_view(), name="report-csv"),
    path("studies/<uuid:study_id>/report-tables.zip", views.ReportZipView.as_view(), name="report-zip"),
    path("studies/<uuid:study_id>/report.pdf", views.ReportPdfView.as_view(), name="report-pdf"),
    path("studies/<uuid:study_id>/cells/<str:cell_id>/crop.png", views.CellCropView.as_view(), name="cell-crop"),
    path("studies/<uuid:study_id>/fields/<str:field_id>/image.png", views.FieldImageView.as_view(),
         name="field-image"),
]
