"""The couples a signed-in person may reach, one helper per meaning. Anything else is a 404."""

from django.shortcuts import get_object_or_404

from practice.access import StaffRequest

from .models import Couple


def own_couple(request: StaffRequest, pk):
    """A couple of the signed-in counselor, with its partners: the counselor's clinical view."""
    return get_object_or_404(Couple.objects.for_counselor(request.user).prefetch_related("partners"), pk=pk)


def practice_couple(request: StaffRequest, pk):
    """Any couple of the admin's practice, with counselor and partners: managed, never read clinically."""
    return get_object_or_404(
        Couple.objects.for_practice(request.practice).select_related("counselor").prefetch_related("partners"), pk=pk
    )
