from django.contrib import admin

from .models import Couple, Partner


class PartnerInline(admin.TabularInline):
    model = Partner
    extra = 0


@admin.register(Couple)
class CoupleAdmin(admin.ModelAdmin):
    list_display = ["label", "practice", "counselor", "status"]
    list_filter = ["practice", "status"]
    # The notes are the counselor's alone ("visible to the counselor only"): not even an operator reads them here.
    exclude = ["notes"]
    inlines = [PartnerInline]
