from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from chatsite.checkpoints import services as checkpoint_services
from chatsite.models import Checkpoint, Membership, Message, Room, User


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


class CheckpointUploadForm(forms.ModelForm):
    file = forms.FileField(help_text="A .zip or .tar.gz of a Hugging Face model directory (safetensors only).")

    class Meta:
        model = Checkpoint
        fields = ("kind", "languages")


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    """Upload, activate and roll back from the Django admin; every write goes through the registry services."""

    list_display = ("version", "kind", "languages", "status", "created", "activated")
    list_filter = ("kind", "status")
    readonly_fields = ("version", "status", "metrics", "reasons", "previous", "archive_sha256", "model_dir")
    actions = ["activate_selected", "rollback_selected"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = CheckpointUploadForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is None else (*self.readonly_fields, "kind", "languages")

    def has_change_permission(self, request, obj=None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        try:
            created = checkpoint_services.upload(
                kind=form.cleaned_data["kind"],
                upload_file=form.cleaned_data["file"],
                languages=form.cleaned_data.get("languages"),
                uploader=request.user,
            )
        except checkpoint_services.CheckpointError as exc:
            self.message_user(request, f"Refused: {exc.detail}", level=messages.ERROR)
            return
        obj.pk = created.pk

    @admin.action(description="Activate the selected checkpoint")
    def activate_selected(self, request, queryset) -> None:
        for checkpoint in queryset:
            try:
                checkpoint_services.activate(checkpoint_id=checkpoint.id, actor=request.user)
                self.message_user(request, f"{checkpoint.version} is active.")
            except checkpoint_services.CheckpointError as exc:
                self.message_user(request, exc.detail, level=messages.ERROR)

    @admin.action(description="Roll back the selected (active) checkpoint")
    def rollback_selected(self, request, queryset) -> None:
        for checkpoint in queryset:
            try:
                checkpoint_services.rollback(checkpoint_id=checkpoint.id, actor=request.user)
                self.message_user(request, f"{checkpoint.version} rolled back.")
            except checkpoint_services.CheckpointError as exc:
                self.message_user(request, exc.detail, level=messages.ERROR)
