from django.urls import path

from portal.core import views

app_name = "core"
urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read-all/", views.notifications_read_all, name="notifications-read-all"),
    path("notifications/<uuid:notification_id>/read/", views.notification_read, name="notification-read"),
]
