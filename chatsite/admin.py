from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from chatsite.models import Membership, Message, Room, User


@admin.register(User)
class BridgeUserAdmin(UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, ("Bridge", {"fields": ("language",)}))
    list_display = ("username", "language", "is_staff", "is_superuser")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "last_seq", "flag_threshold", "auto_hide_threshold")
    inlines = [MembershipInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("room", "seq", "author", "language", "hidden", "created")
    list_filter = ("hidden", "language")
