from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from portal.accounts.models import User


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    fieldsets = UserAdmin.fieldsets + (("Portal", {"fields": ("is_auditor",)}),)
    list_display = ("username", "email", "is_auditor", "is_staff", "is_superuser")
