from django.urls import path

from portal.review import views

app_name = "review"
urlpatterns = [
    path("", views.session_list, name="session-list"),
    path("sessions/<uuid:pk>/", views.session_detail, name="session-detail"),
    path("sessions/<uuid:session_id>/picklists/new", views.pick_list_create, name="picklist-create"),
    path("images/<uuid:image_id>/", views.viewer, name="viewer"),
    path("images/<uuid:image_id>/display.png", views.image_display, name="image-display"),
    path("images/<uuid:image_id>/preview.jpg", views.image_preview, name="image-preview"),
    path("images/<uuid:image_id>/thumb.png", views.image_thumb, name="image-thumb"),
    path("detections/<uuid:detection_id>/crop.png", views.detection_crop, name="detection-crop"),
    path("export/coco.zip", views.coco_zip, name="coco-zip"),
    path("picklists/<uuid:pick_list_id>/", views.pick_list_page, name="picklist"),
    path("picklists/<uuid:pick_list_id>/picklist.csv", views.pick_list_csv, name="picklist-csv"),
    path("picklists/<uuid:pick_list_id>/qupath.geojson", views.pick_list_geojson, name="picklist-geojson"),
    path("picklists/<uuid:pick_list_id>/positions.pos", views.pick_list_pos, name="picklist-pos"),
]
