from django.urls import path

from portal.core import views

urlpatterns = [
    path("me/", views.MeApi.as_view(), name="api-me"),
]
