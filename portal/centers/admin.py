from django.contrib import admin

from portal.centers.models import Center, Membership


@admin.register(Center)
class CenterAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "time_zone")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "center", "role")
    list_filter = ("role", "center")
