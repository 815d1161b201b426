from django.contrib import admin

from .models import Assignment, Instrument, InstrumentTranslation, Reminder


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ["slug", "version", "title", "loaded_at"]
    readonly_fields = ["slug", "version", "title", "definition", "checksum", "scoring_key", "loaded_at"]


@admin.register(InstrumentTranslation)
class InstrumentTranslationAdmin(admin.ModelAdmin):
    list_display = ["instrument", "language", "status", "loaded_at"]
    readonly_fields = ["instrument", "language", "status", "definition", "checksum", "loaded_at"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["couple", "instrument", "status", "assigned_at", "due_at"]
    list_filter = ["status"]


@admin.register(Reminder)
class ReminderAdmin(admin.ModelAdmin):
    list_display = ["response", "kind", "status", "due_at", "sent_at", "attempts"]
    list_filter = ["status", "kind"]
