from django.urls import path

from portal.datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.create, name="create"),
    path("sessions/<uuid:session_id>/use/", views.session_use, name="session-use"),
    path("<uuid:dataset_version_id>/", views.detail, name="detail"),
    path("<uuid:dataset_version_id>/coco.zip", views.export, name="export"),
]
