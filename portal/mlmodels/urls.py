from django.urls import path

from portal.mlmodels import views

app_name = "mlmodels"
urlpatterns = [
    path("", views.model_list, name="list"),
    path("<uuid:model_version_id>/activate/", views.model_activate, name="activate"),
]
